//! nginx.conf as nginx reads it: comments dropped, every directive with the blocks it sits in.
//! Tests check the parsed configuration, never the text (a commented-out line must not pass).

/// One directive: the blocks enclosing it (e.g. `["http", "upstream crebito"]`) and its words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directive {
    pub context: Vec<String>,
    pub words: Vec<String>,
}

impl Directive {
    pub fn name(&self) -> &str {
        &self.words[0]
    }

    /// Whether it sits (at any depth) inside a block whose header starts with `block`.
    pub fn inside(&self, block: &str) -> bool {
        self.context.iter().any(|c| c.starts_with(block))
    }
}

pub fn directives(conf: &str) -> Vec<Directive> {
    let mut out = Vec::new();
    let mut context: Vec<String> = Vec::new();
    let mut words: Vec<String> = Vec::new();
    let mut word = String::new();
    let mut chars = conf.chars();
    let flush = |word: &mut String, words: &mut Vec<String>| {
        if !word.is_empty() {
            words.push(std::mem::take(word));
        }
    };
    while let Some(c) = chars.next() {
        match c {
            '#' if word.is_empty() => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
            }
            '"' | '\'' => {
                for q in chars.by_ref() {
                    if q == c {
                        break;
                    }
                    word.push(q);
                }
                words.push(std::mem::take(&mut word));
            }
            ';' => {
                flush(&mut word, &mut words);
                assert!(!words.is_empty(), "nginx.conf: empty directive");
                out.push(Directive {
                    context: context.clone(),
                    words: std::mem::take(&mut words),
                });
            }
            '{' => {
                flush(&mut word, &mut words);
                context.push(std::mem::take(&mut words).join(" "));
            }
            '}' => {
                assert!(
                    words.is_empty() && word.is_empty(),
                    "nginx.conf: `}}` after an unfinished directive"
                );
                context.pop().expect("nginx.conf: unbalanced }");
            }
            c if c.is_whitespace() => flush(&mut word, &mut words),
            c => word.push(c),
        }
    }
    assert!(
        context.is_empty() && words.is_empty(),
        "nginx.conf: unterminated block or directive"
    );
    out
}

/// The load-balancing methods nginx offers besides its default, (weighted) round robin.
pub const BALANCING_METHODS: [&str; 5] = ["least_conn", "ip_hash", "hash", "random", "least_time"];

/// The directives of the `upstream NAME` block.
pub fn upstream<'a>(all: &'a [Directive], name: &str) -> Vec<&'a Directive> {
    let header = format!("upstream {name}");
    all.iter()
        .filter(|d| d.context.last().is_some_and(|c| *c == header))
        .collect()
}

/// The nginx binary (Debian's package), or a failure that names the package.
pub fn binary() -> &'static str {
    ["/usr/sbin/nginx", "/usr/bin/nginx"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .unwrap_or_else(|| {
            panic!("nginx is not installed: `sudo apt-get install nginx` (scripts/test does it)")
        })
}
