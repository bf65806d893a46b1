//! The image a contestant ships, built without a Docker engine.
//!
//! `docker build -f deploy/Dockerfile .` sends the repository minus `.dockerignore` as its
//! context, and the build stage copies what its `COPY` lines name and runs its `RUN` lines.
//! This test does the same from the two files themselves — never from a list of its own —
//! in an empty folder: every `COPY` from the filtered context, every `RUN` through `sh -c`
//! (except the base image's package manager, `apk`), offline, with a target directory kept
//! between runs so that it costs one incremental build. Then what the final stage copies
//! out of the build stage must exist, and the binary must answer `--version` and `--help`.
//!
//! What it cannot reproduce here: the musl toolchain of `rust:*-alpine` (the host's target
//! is used: the same code, lockfile and flags, not the same libc) and the `scratch` stage's
//! file ownership; both are checked statically below.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{read, repo};
use globset::{GlobBuilder, GlobMatcher};

/// One Dockerfile instruction, its continuation lines joined and comment lines dropped (as
/// Docker does, also inside a continued instruction).
#[derive(Debug)]
struct Instruction {
    keyword: String,
    args: String,
}

fn instructions(dockerfile: &str) -> Vec<Instruction> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in dockerfile.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') || (trimmed.is_empty() && current.is_empty()) {
            continue;
        }
        match trimmed.strip_suffix('\\') {
            Some(head) => {
                current.push_str(head);
                current.push(' ');
            }
            None => {
                current.push_str(trimmed);
                let (keyword, args) = current
                    .split_once(char::is_whitespace)
                    .unwrap_or((&current, ""));
                out.push(Instruction {
                    keyword: keyword.to_ascii_uppercase(),
                    args: args.trim().to_string(),
                });
                current.clear();
            }
        }
    }
    assert!(
        current.is_empty(),
        "the Dockerfile ends inside a continued line"
    );
    out
}

/// The instructions of each stage, from its `FROM` (included) to the next.
fn stages(all: Vec<Instruction>) -> Vec<Vec<Instruction>> {
    let mut stages: Vec<Vec<Instruction>> = Vec::new();
    for i in all {
        if i.keyword == "FROM" {
            stages.push(Vec::new());
        }
        stages
            .last_mut()
            .expect("the Dockerfile starts with FROM")
            .push(i);
    }
    stages
}

/// `COPY [--flag=value…] SRC… DEST`: (flags, sources, destination).
fn copy_args(args: &str) -> (Vec<&str>, Vec<&str>, &str) {
    let words: Vec<&str> = args.split_whitespace().collect();
    let (flags, paths): (Vec<&str>, Vec<&str>) =
        words.into_iter().partition(|w| w.starts_with("--"));
    let (dest, sources) = paths.split_last().expect("COPY SRC… DEST");
    (flags, sources.to_vec(), dest)
}

/// `.dockerignore`, with Docker's rules: patterns anchored at the context's root, `*` not
/// crossing `/`, `**` any depth, a pattern that matches a directory excludes everything under
/// it, `!` re-includes, and the last matching line wins.
struct DockerIgnore {
    rules: Vec<(GlobMatcher, bool)>,
}

impl DockerIgnore {
    fn parse(text: &str) -> DockerIgnore {
        let rules = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|l| {
                let (pattern, exclude) = match l.strip_prefix('!') {
                    Some(p) => (p.trim(), false),
                    None => (l, true),
                };
                let pattern = pattern.trim_start_matches('/').trim_end_matches('/');
                let glob = GlobBuilder::new(pattern)
                    .literal_separator(true)
                    .build()
                    .unwrap_or_else(|e| panic!(".dockerignore: {pattern}: {e}"));
                (glob.compile_matcher(), exclude)
            })
            .collect();
        DockerIgnore { rules }
    }

    fn excluded(&self, rel: &Path) -> bool {
        let mut excluded = false;
        for (glob, exclude) in &self.rules {
            let hit = rel
                .ancestors()
                .filter(|a| !a.as_os_str().is_empty())
                .any(|a| glob.is_match(a));
            if hit {
                excluded = *exclude;
            }
        }
        excluded
    }
}

/// Copies the context path `src` (a file, or a directory's contents) to `dest`, leaving out
/// what `.dockerignore` excludes; a source that is excluded itself does not exist for Docker.
fn copy_from_context(context: &Path, ignore: &DockerIgnore, src: &Path, dest: &Path) {
    assert!(
        !ignore.excluded(src),
        "COPY {}: excluded by .dockerignore, so not in the build context (docker build fails: not found)",
        src.display()
    );
    let from = context.join(src);
    let meta = std::fs::metadata(&from)
        .unwrap_or_else(|e| panic!("COPY {}: not in the build context: {e}", src.display()));
    if meta.is_file() {
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::copy(&from, dest).unwrap();
        return;
    }
    std::fs::create_dir_all(dest).unwrap();
    for entry in std::fs::read_dir(&from).unwrap() {
        let name = entry.unwrap().file_name();
        let rel = src.join(&name);
        if !ignore.excluded(&rel) {
            copy_from_context(context, ignore, &rel, &dest.join(&name));
        }
    }
}

/// A path the Dockerfile names inside the build stage, in the folder that stands for it.
fn in_stage(root: &Path, workdir: &str, path: &str) -> PathBuf {
    match path.strip_prefix('/') {
        Some(_) => {
            root.join(Path::new(path).strip_prefix(workdir).unwrap_or_else(|_| {
                panic!("{path} is outside the build stage's WORKDIR {workdir}")
            }))
        }
        None => root.join(path),
    }
}

/// (major, minor) of a "1.85" / "1.85.0" version.
fn minor_version(v: &str) -> (u32, u32) {
    let mut parts = v
        .split('.')
        .map(|p| p.parse::<u32>().unwrap_or_else(|_| panic!("version {v}")));
    (parts.next().unwrap(), parts.next().unwrap_or(0))
}

#[test]
fn the_image_builds_from_its_context_and_the_binary_runs() {
    let context = repo();
    let ignore = DockerIgnore::parse(&read(".dockerignore"));
    let mut stages = stages(instructions(&read("deploy/Dockerfile")));
    assert!(
        stages.len() >= 2,
        "multi-stage: a build stage and the image"
    );
    let image = stages.pop().unwrap();
    let build = stages.remove(0);

    let root = tempfile::tempdir().unwrap();
    // The build's target directory survives between runs (only crebito itself rebuilds).
    let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("image-build");
    std::fs::create_dir_all(&cache).unwrap();
    let mut workdir = "/".to_string();
    let mut skipped = Vec::new();
    for i in &build {
        match i.keyword.as_str() {
            "FROM" | "ENV" | "ARG" | "LABEL" => {}
            "WORKDIR" => {
                workdir = i.args.clone();
                // Symlinked in the stage's folder: `target/…` paths in RUN lines reach the cache.
                let target = in_stage(root.path(), &workdir, "target");
                if !target.exists() {
                    std::os::unix::fs::symlink(&cache, &target).unwrap();
                }
            }
            "COPY" => {
                let (flags, sources, dest) = copy_args(&i.args);
                assert!(
                    flags.iter().all(|f| !f.starts_with("--from")),
                    "the build stage copies only from the context: {}",
                    i.args
                );
                let into_dir = sources.len() > 1 || dest.ends_with('/');
                let dest = in_stage(root.path(), &workdir, dest);
                for src in sources {
                    // Docker: a directory's contents go to DEST; a file goes to DEST, or into
                    // it when DEST names a directory (ends with `/`, or several sources).
                    let is_file = context.join(src).is_file();
                    let to = if is_file && into_dir {
                        dest.join(Path::new(src).file_name().unwrap())
                    } else {
                        dest.clone()
                    };
                    copy_from_context(&context, &ignore, Path::new(src), &to);
                }
            }
            "RUN" if i.args.starts_with("apk ") => skipped.push(i.args.clone()),
            "RUN" => {
                eprintln!("RUN {}", i.args);
                let out = Command::new("sh")
                    .arg("-c")
                    .arg(&i.args)
                    .current_dir(root.path())
                    .env("CARGO_NET_OFFLINE", "true")
                    .env("CARGO_TERM_COLOR", "never")
                    .env_remove("CARGO_TARGET_DIR")
                    .output()
                    .unwrap();
                assert!(
                    out.status.success(),
                    "the image's build fails at `RUN {}`:\n{}",
                    i.args,
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            other => {
                panic!("the build stage has an instruction this test does not replay: {other}")
            }
        }
    }
    eprintln!("not replayed (the base image's package manager): {skipped:?}");

    // The image: an empty base, what it copies out of the build stage exists, not root.
    assert_eq!(
        image[0].args, "scratch",
        "a static binary on an empty image"
    );
    let mut binary = None;
    for i in image.iter().filter(|i| i.keyword == "COPY") {
        let (flags, sources, dest) = copy_args(&i.args);
        assert!(
            flags.contains(&"--from=build"),
            "the image copies only from the build stage"
        );
        for src in sources {
            let built = in_stage(root.path(), &workdir, src);
            assert!(
                built.exists(),
                "COPY --from=build {src}: the build stage made no such path"
            );
            if src.ends_with("/release/crebito") {
                binary = Some((built, dest.to_string()));
            }
        }
    }
    let (binary, in_image) = binary.expect("the image copies target/release/crebito");
    let entrypoint = image
        .iter()
        .find(|i| i.keyword == "ENTRYPOINT")
        .expect("ENTRYPOINT");
    assert_eq!(
        entrypoint.args,
        format!("[\"{in_image}\"]"),
        "the entry point is the copied binary"
    );
    let user = &image
        .iter()
        .rfind(|i| i.keyword == "USER")
        .expect("USER")
        .args;
    let uid: u32 = user
        .split(':')
        .next()
        .unwrap()
        .parse()
        .expect("a numeric USER: scratch has no passwd");
    assert_ne!(uid, 0, "the image does not run as root");

    let version = common::succeed(Command::new(&binary).arg("--version"));
    assert_eq!(version, format!("crebito {}", env!("CARGO_PKG_VERSION")));
    let help = common::succeed(Command::new(&binary).arg("--help"));
    assert!(help.contains("serve") && help.contains("migrate"), "{help}");
}

/// The build stage's Rust is pinned, and new enough for every crate in the lockfile; so is
/// the `rust-version` crebito declares.
#[test]
fn the_build_stage_pins_a_rust_that_builds_the_lockfile() {
    let from = instructions(&read("deploy/Dockerfile"))
        .into_iter()
        .find(|i| i.keyword == "FROM")
        .unwrap()
        .args;
    let image = from.split_whitespace().next().unwrap();
    let tag = image
        .strip_prefix("rust:")
        .expect("the official rust image");
    let rust = tag
        .strip_suffix("-alpine")
        .expect("alpine: musl, a static binary");
    assert!(rust.contains('.'), "pinned to a minor version, not {tag}");
    let meta: serde_json::Value = serde_json::from_str(&common::succeed(
        Command::new(env!("CARGO"))
            .args(["metadata", "--locked", "--offline", "--format-version", "1"])
            .current_dir(repo()),
    ))
    .unwrap();
    let needed = meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["rust_version"].as_str())
        .map(minor_version)
        .max()
        .unwrap();
    assert!(
        minor_version(rust) >= needed,
        "rust:{tag} is older than the {needed:?} a locked crate needs"
    );
    // And crebito's own declared minimum (README: "Rust ≥ …") is not below what it builds with.
    assert!(
        minor_version(env!("CARGO_PKG_RUST_VERSION")) >= needed,
        "Cargo.toml's rust-version {} is below the {needed:?} a locked crate needs",
        env!("CARGO_PKG_RUST_VERSION")
    );
}

#[test]
fn dockerignore_follows_dockers_rules() {
    let ignore = DockerIgnore::parse(
        "target\nstress/*\n!stress/loader\nstress/loader/target\n*.db*\n# c\n/docs/\n",
    );
    for (path, excluded) in [
        ("target/release/crebito", true),
        ("src/target.rs", false),
        ("stress/run.sh", true),
        ("stress/loader/Cargo.toml", false),
        ("stress/loader/src/main.rs", false),
        ("stress/loader/target/x", true),
        ("crebito.db-wal", true),
        ("src/crebito.db", false),
        ("docs/src/x.md", true),
    ] {
        assert_eq!(ignore.excluded(Path::new(path)), excluded, "{path}");
    }
}
