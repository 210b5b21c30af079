//! Repository-wide checks of the invariants ARCHITECTURE.md states: the direction of
//! dependencies between crates, shared lints, and a `//!` header on every source file.

use std::path::{Path, PathBuf};

use crate::root;

/// Which vista crates each crate may depend on (dev-dependencies included).
const ALLOWED: [(&str, &[&str]); 11] = [
    ("vista-format", &[]),
    ("vista-data", &["vista-format"]),
    ("vista-models", &["vista-format"]),
    ("vista-schedule", &["vista-format"]),
    ("vista-plot", &["vista-format", "vista-schedule"]),
    (
        "vista-train",
        &[
            "vista-format",
            "vista-data",
            "vista-models",
            "vista-schedule",
            "vista-plot",
        ],
    ),
    // Evaluation needs models and data, not the training engine.
    (
        "vista-eval",
        &["vista-format", "vista-data", "vista-models", "vista-plot"],
    ),
    (
        "vista-clean",
        &[
            "vista-format",
            "vista-data",
            "vista-models",
            "vista-schedule",
            "vista-plot",
            "vista-train",
            "vista-eval",
        ],
    ),
    (
        "vista-cli",
        &[
            "vista-format",
            "vista-data",
            "vista-models",
            "vista-schedule",
            "vista-plot",
            "vista-train",
            "vista-eval",
            "vista-clean",
        ],
    ),
    // The examples use the library crates as a user's program would, not the binary.
    (
        "vista-examples",
        &[
            "vista-format",
            "vista-data",
            "vista-models",
            "vista-schedule",
            "vista-train",
            "vista-eval",
        ],
    ),
    // xtask reads what the binary writes as the types it writes, and nothing else.
    ("xtask", &["vista-format"]),
];

fn manifests() -> Vec<(String, String)> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root().join("crates"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    dirs.push(root().join("xtask"));
    dirs.sort();
    dirs.iter()
        .map(|d| {
            let name = d.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read_to_string(d.join("Cargo.toml")).unwrap())
        })
        .collect()
}

/// Names of `vista-*` crates a manifest mentions as dependencies.
fn vista_deps(manifest: &str) -> Vec<String> {
    manifest
        .lines()
        .filter_map(|l| l.trim().split(['=', '.', ' ']).next().map(str::to_owned))
        .filter(|k| k.starts_with("vista-") && !k.is_empty())
        .collect()
}

#[test]
fn dependencies_point_one_way() {
    for (name, manifest) in manifests() {
        let allowed = ALLOWED
            .iter()
            .find(|(n, _)| *n == name)
            .unwrap_or_else(|| panic!("crate {name} is not in ARCHITECTURE.md's dependency table"))
            .1;
        for dep in vista_deps(&manifest) {
            assert!(
                allowed.contains(&dep.as_str()),
                "{name} must not depend on {dep} (see ARCHITECTURE.md)"
            );
        }
    }
}

#[test]
fn xtask_stays_light() {
    for crate_dir in ["xtask", "crates/vista-format", "crates/vista-plot"] {
        let manifest = std::fs::read_to_string(root().join(crate_dir).join("Cargo.toml")).unwrap();
        let links_burn = manifest.lines().any(|l| l.trim_start().starts_with("burn"));
        assert!(
            !links_burn,
            "{crate_dir} links no burn: xtask runs the vista binary and reads its files through vista-format"
        );
    }
}

/// Ways of reading a file or an output without its type: a JSON value indexed by key,
/// a hand-written field parser, JSON assembled by hand.
const UNTYPED: [&str; 5] = [
    "serde_json::Value",
    "serde_json::Map",
    "json!(",
    "fn field(",
    // The start of a JSON object written with `format!`.
    "{{\\\"",
];

#[test]
fn xtask_reads_artefacts_as_their_types() {
    for (rel, f) in rust_sources(&["xtask"]) {
        let text = std::fs::read_to_string(&f).unwrap();
        for pattern in UNTYPED {
            assert!(
                !text.contains(pattern),
                "{rel} uses `{pattern}`: read vista's files and `--json` output as their vista_format types"
            );
        }
        // `v["key"]`: a JSON value indexed by a field name.
        let indexed = text.match_indices("[\"").any(|(i, _)| {
            text[..i].ends_with(|c: char| c.is_alphanumeric() || c == '_' || c == ')' || c == ']')
        });
        assert!(!indexed, "{rel} indexes a JSON value by key");
    }
    // The one runner of the binary returns its status, not its output: facts come from
    // `vista_json` (typed) or from the files the binary writes.
    let util = std::fs::read_to_string(root().join("xtask/src/util.rs")).unwrap();
    assert!(util.contains("pub fn vista(bin: &Path, args: &[String]) -> Result<()>"));
}

/// Architecture names: the registry (`vista-models/src/registry.rs`) spells them once;
/// every other source uses `Arch`.
const ARCH_NAMES: [&str; 6] = [
    "\"resnet18\"",
    "\"resnet50\"",
    "\"inception_v3\"",
    "\"inception-v3\"",
    "\"efficientnet_lite0\"",
    "\"efficientnet-lite0\"",
];

#[test]
fn architecture_names_live_in_the_registry() {
    for (rel, f) in rust_sources(&["crates"]) {
        if !rel.contains("/src/") || rel == "crates/vista-models/src/registry.rs" {
            continue;
        }
        let text = std::fs::read_to_string(&f).unwrap();
        // Doc examples may show a name parsing into an `Arch`.
        let code = without_comments(text.split("#[cfg(test)]").next().unwrap_or(""));
        for name in ARCH_NAMES {
            assert!(
                !code.contains(name),
                "{rel} spells the architecture {name}; use vista_models::Arch"
            );
        }
    }
}

/// File names of the folders vista writes, which only `vista-format`'s layout spells.
const RUN_FOLDER_NAMES: [&str; 14] = [
    "\"config.json\"",
    "\"model.bin\"",
    "\"metrics.json\"",
    "\"state.json\"",
    "\"lr_find.json\"",
    "\"evaluation.json\"",
    "\"flags.json\"",
    "\"synthetic.json\"",
    "\"consistency.json\"",
    "\"epochs.json\"",
    "\"generator.json\"",
    "\"gan.json\"",
    "\"checkpoints\"",
    "\"detection.json\"",
];

#[test]
fn run_folder_names_live_in_vista_format() {
    for (rel, f) in rust_sources(&["crates", "xtask"]) {
        let library_or_tool = rel.contains("/src/") && !rel.starts_with("crates/vista-format/");
        if !library_or_tool {
            continue;
        }
        let text = std::fs::read_to_string(&f).unwrap();
        // Unit tests may build folders by hand.
        let code = text.split("#[cfg(test)]").next().unwrap_or("");
        for name in RUN_FOLDER_NAMES {
            assert!(
                !code.contains(name),
                "{rel} spells the file name {name}; use vista_format's RunDir, GanDir, ..."
            );
        }
    }
}

/// What a library call reports goes through `vista_format::Observer`; only the binary
/// prints. The one exception is the fault injection of the durability tests, which
/// says on stderr where it killed the process (there is no caller left to tell).
const PRINT_ALLOWED: [(&str, usize); 1] = [("crates/vista-format/src/fsutil.rs", 1)];

#[test]
fn library_crates_do_not_print() {
    for (rel, f) in rust_sources(&["crates"]) {
        // The binary and the examples' helpers print on purpose.
        let library = rel.contains("/src/")
            && !rel.starts_with("crates/vista-cli/")
            && !rel.starts_with("crates/vista-examples/");
        if !library {
            continue;
        }
        let text = std::fs::read_to_string(&f).unwrap();
        // Unit tests may say why they skipped; doc examples show a caller printing.
        let code = without_comments(text.split("#[cfg(test)]").next().unwrap_or_default());
        let prints: usize = ["print!(", "println!(", "dbg!(", "io::stdout", "io::stderr"]
            .iter()
            .map(|p| code.matches(p).count())
            .sum();
        let allowed = PRINT_ALLOWED
            .iter()
            .find(|(file, _)| *file == rel)
            .map_or(0, |(_, n)| *n);
        assert_eq!(
            prints, allowed,
            "{rel} prints; report through vista_format::Observer (note, step, epoch) instead"
        );
        assert!(
            !code.contains("indicatif"),
            "{rel} draws progress bars; only the binary does"
        );
    }
    for (name, manifest) in manifests() {
        if name != "vista-cli" && name != "vista-examples" {
            assert!(
                !manifest.contains("indicatif"),
                "{name} depends on indicatif; only the binary draws progress bars"
            );
        }
    }
}

#[test]
fn every_crate_is_in_the_code_map() {
    let map = std::fs::read_to_string(root().join("ARCHITECTURE.md")).unwrap();
    for (name, _) in manifests() {
        let entry = if name == "xtask" {
            "**`xtask`**".to_string()
        } else {
            format!("**`crates/{name}`**")
        };
        assert!(
            map.contains(&entry),
            "ARCHITECTURE.md's code map has no {entry}"
        );
    }
}

#[test]
fn every_example_runs_in_ci() {
    let ci = std::fs::read_to_string(root().join("xtask/src/ci.rs")).unwrap();
    let dir = root().join("crates/vista-examples/examples");
    let mut names = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        assert!(
            ci.contains(&format!("\"{name}\"")),
            "the example {name} is not in xtask's EXAMPLES: CI would not run it"
        );
        names.push(name);
    }
    names.sort();
    assert_eq!(names, ["fine_tune", "fit_one_cycle", "tta_ensemble"]);
}

#[test]
fn every_crate_uses_the_workspace_lints() {
    for (name, manifest) in manifests() {
        assert!(
            manifest.contains("[lints]\nworkspace = true"),
            "{name} must set `[lints] workspace = true`"
        );
    }
}

/// `code` without its comment lines (`//`, `///`, `//!`).
fn without_comments(code: &str) -> String {
    code.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() && path.file_name().is_some_and(|n| n != "target") {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The Rust sources below the repository's folders `dirs`, with their paths relative to
/// the root written with `/`.
fn rust_sources(dirs: &[&str]) -> Vec<(String, PathBuf)> {
    let mut files = Vec::new();
    for dir in dirs {
        rust_files(&root().join(dir), &mut files);
    }
    files
        .into_iter()
        .map(|f| {
            let rel = f.strip_prefix(root()).unwrap().to_string_lossy();
            (rel.replace('\\', "/"), f)
        })
        .collect()
}

#[test]
fn every_source_file_says_what_it_is_for() {
    let files = rust_sources(&["crates", "xtask", "tests"]);
    assert!(files.len() > 10);
    for (rel, f) in files {
        let text = std::fs::read_to_string(&f).unwrap();
        assert!(
            text.starts_with("//!"),
            "{rel} must start with a `//!` line"
        );
    }
}

/// Library sources that may name a concrete backend outside their tests: the flex
/// kernels (convolution, batch norm, max pool, SGD's step), which recognize
/// `Autodiff<Flex>` or `Flex` at run time behind a generic signature.
const BACKEND_AWARE: [&str; 4] = [
    "crates/vista-models/src/ops/conv.rs",
    "crates/vista-models/src/ops/norm.rs",
    "crates/vista-models/src/ops/pool.rs",
    "crates/vista-models/src/ops/sgd.rs",
];

#[test]
fn library_crates_name_no_backend() {
    for (rel, f) in rust_sources(&["crates"]) {
        let library = rel.contains("/src/") && !rel.starts_with("crates/vista-cli/");
        if !library || BACKEND_AWARE.contains(&rel.as_str()) {
            continue;
        }
        let text = std::fs::read_to_string(&f).unwrap();
        // Unit tests at the end of a file may pick a backend to run on, and docs may
        // say which backend a workaround serves.
        let code = without_comments(text.split("#[cfg(test)]").next().unwrap_or_default());
        for name in ["Flex", "Cuda", "NdArray"] {
            assert!(
                !code.contains(name),
                "{rel} names the {name} backend; library crates stay generic over `B: Backend`"
            );
        }
    }
}

/// The sources allowed `unsafe`, in one place each: the convolution's call into the gemm
/// crate, whose API takes raw pointers and strides, the `vista` binary's setting of
/// its allocator's options, and the counting allocator (`GlobalAlloc` is an unsafe
/// trait) with which vista-models' tests bound the checkpoint reader's memory.
const UNSAFE_ALLOWED: [&str; 3] = [
    "crates/vista-models/src/ops/conv.rs",
    "crates/vista-cli/src/main.rs",
    "crates/vista-models/tests/it/alloc.rs",
];

#[test]
fn unsafe_code_only_where_allowed() {
    for (rel, f) in rust_sources(&["crates", "xtask", "tests"]) {
        let text = std::fs::read_to_string(&f).unwrap();
        let allows = text.matches("allow(unsafe_code)").count();
        if UNSAFE_ALLOWED.contains(&rel.as_str()) {
            assert_eq!(allows, 1, "{rel} allows unsafe code in exactly one place");
        } else if rel != "tests/e2e/tidy.rs" {
            assert_eq!(
                allows, 0,
                "{rel} allows unsafe code; only {UNSAFE_ALLOWED:?} may"
            );
        }
    }
}
