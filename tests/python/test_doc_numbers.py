"""Unit tests of scripts/doc-numbers: a number cited from a report must be in it."""

import importlib.machinery
import importlib.util
import os
import tempfile
import unittest

_path = os.path.join(os.path.dirname(__file__), "..", "..", "scripts", "doc-numbers")
_loader = importlib.machinery.SourceFileLoader("doc_numbers", _path)
_spec = importlib.util.spec_from_loader("doc_numbers", _loader)
doc_numbers = importlib.util.module_from_spec(_spec)
_loader.exec_module(doc_numbers)


class DocNumbers(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        root = self.dir.name
        os.makedirs(os.path.join(root, "docs", "reports", "run"))
        os.makedirs(os.path.join(root, "docs", "src"))
        with open(os.path.join(root, "docs", "reports", "run", "medians.txt"), "w") as f:
            f.write("stack p99 4.20 ms, floor 3.30; 34 751 answered 200, ratio 1.27x\n")
        self.reports = os.path.join(root, "docs", "reports")
        self.page = os.path.join(root, "docs", "src", "page.md")

    def tearDown(self):
        self.dir.cleanup()

    def misses(self, text):
        with open(self.page, "w") as f:
            f.write(text)
        return doc_numbers.check([self.page], self.reports)

    def test_numbers_found_in_their_report_pass(self):
        misses, checked = self.misses(
            "p99 [4.2 ms against 3.30 ms, 1.27×](../reports/run/medians.txt#x); "
            "[34 751 answered](../reports/run/medians.txt)\n"
        )
        self.assertEqual((misses, checked), ([], 4))

    def test_a_number_edited_away_from_its_report_fails(self):
        misses, _ = self.misses("p99 [4.25 ms](../reports/run/medians.txt)\n")
        self.assertEqual(len(misses), 1)
        self.assertIn("4.25", misses[0])
        self.assertIn("page.md:1", misses[0])

    def test_a_number_may_be_quoted_rounded_to_its_digits(self):
        with open(os.path.join(self.reports, "run", "medians.txt"), "a") as f:
            f.write("cpu 430.441 us, p99 2.806, max 15.88\n")
        ok = "[430 µs, p99 2.81, max 15.9 ms](../reports/run/medians.txt)\n"
        self.assertEqual(self.misses(ok), ([], 3))
        for wrong in (
            "[431 µs](../reports/run/medians.txt)\n",
            "[2.80](../reports/run/medians.txt)\n",
            "[15.8](../reports/run/medians.txt)\n",
        ):
            self.assertEqual(len(self.misses(wrong)[0]), 1, wrong)

    def test_thousands_separators_do_not_split_a_number(self):
        self.assertEqual(len(self.misses("[34 752 answered](../reports/run/medians.txt)\n")[0]), 1)
        self.assertEqual(self.misses("[34,751 answered](../reports/run/medians.txt)\n")[0], [])

    def test_a_link_wrapped_over_lines_is_checked(self):
        misses, checked = self.misses("text [34 751\nanswered, p99 4.21](../reports/run/medians.txt)\n")
        self.assertEqual(checked, 2)
        self.assertEqual(len(misses), 1)
        self.assertIn("4.21", misses[0])
        self.assertIn("page.md:1", misses[0])
        # Never across a paragraph: "[x" and "](…)" two paragraphs apart are not a link.
        self.assertEqual(self.misses("[a 5\n\nb 6](../reports/run/medians.txt)\n"), ([], 0))

    def test_a_missing_report_fails(self):
        misses, _ = self.misses("[3 runs](../reports/run/gone.txt)\n")
        self.assertIn("not a file", misses[0])

    def test_links_elsewhere_and_links_without_numbers_are_not_citations(self):
        self.assertEqual(
            self.misses("[9 things](https://example.com/9) [the report](../reports/run/medians.txt)\n"), ([], 0)
        )

    def numbers_of(self, text):
        return [str(n) for n in doc_numbers.numbers(text)]

    def test_numbers(self):
        self.assertEqual(
            self.numbers_of("p99 3.30 ms, 11 192 of 11\u202f192, 1.27×, v0.2.0"), ["3.30", "11192", "11192", "1.27"]
        )


if __name__ == "__main__":
    unittest.main()
