//! Durability under injected faults: the `vista` binary is made to fail (an I/O error)
//! or die (abort, as a kill would) at the n-th write, fsync or rename of checkpointing,
//! `review --apply` and `review --undo` (`VISTA_FAULT_AT`, see vista-data's
//! `fault_point`); rerunning the same command then ends in the same state as a run
//! that was never interrupted. Also: two processes never share a run folder.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::train::{data_and_whole_run, image, metrics, train_args, write_dataset};
use crate::{root, text, vista};

/// `vista ARGS` with a fault at the n-th operation (`abort`: the process dies there).
fn vista_fault(args: &[&str], cache: &Path, n: u64, abort: bool) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vista"))
        .args(args)
        .arg("--quiet")
        .current_dir(root())
        .env("VISTA_CACHE_DIR", cache)
        .env("VISTA_FAULT_AT", n.to_string())
        .env("VISTA_FAULT_MODE", if abort { "abort" } else { "error" })
        .stderr(Stdio::piped())
        .stdout(Stdio::piped())
        .output()
        .expect("the vista binary runs")
}

/// Files below `dir` with their bytes (links as links).
fn tree(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries {
            let p = e.unwrap().path();
            let m = std::fs::symlink_metadata(&p).unwrap();
            if m.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap().to_path_buf();
                out.insert(rel, std::fs::read(&p).unwrap_or_default());
            }
        }
    }
    out
}

/// Asserts two trees are equal, naming the paths that differ rather than their bytes.
#[track_caller]
fn assert_same(got: &BTreeMap<PathBuf, Vec<u8>>, want: &BTreeMap<PathBuf, Vec<u8>>, what: &str) {
    let differ: Vec<_> = got
        .keys()
        .chain(want.keys())
        .filter(|k| got.get(*k) != want.get(*k))
        .collect();
    assert!(differ.is_empty(), "{what}: these differ: {differ:?}");
}

fn copy_tree(from: &Path, to: &Path) {
    for (rel, bytes) in tree(from) {
        let p = to.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, bytes).unwrap();
    }
}

/// A dataset of three classes, a manifest flagging four images and a journal deciding
/// them (two removals, a relabel, a keep), under `dir`.
fn review_fixture(dir: &Path) {
    let data = dir.join("data");
    for (c, name) in ["a", "b", "c"].iter().enumerate() {
        std::fs::create_dir_all(data.join(name)).unwrap();
        for i in 0..3 {
            image(c, i)
                .save(data.join(name).join(format!("{i}.png")))
                .unwrap();
        }
    }
    let flags: Vec<_> = ["a/0.png", "a/1.png", "b/2.png", "c/0.png"]
        .iter()
        .map(|i| {
            serde_json::json!({"image": i, "given": "a", "predicted": "b",
                "probability": 0.95, "reason": "likely_mislabelled"})
        })
        .collect();
    let manifest = serde_json::json!({
        "dataset": data.canonicalize().unwrap(), "classes": ["a", "b", "c"],
        "rules": {"mislabelled_above": 0.9, "ambiguous": [0.5, 0.6]},
        "predictions": "a test", "flags": flags,
    });
    std::fs::write(dir.join("flags.json"), manifest.to_string()).unwrap();
    std::fs::write(
        dir.join("review.jsonl"),
        [
            r#"{"image":"a/0.png","action":"remove"}"#,
            r#"{"image":"a/1.png","action":"relabel","class":"c"}"#,
            r#"{"image":"b/2.png","action":"remove"}"#,
            r#"{"image":"c/0.png","action":"keep"}"#,
            "",
        ]
        .join("\n"),
    )
    .unwrap();
}

/// The state that matters after a review step: the dataset, its quarantine, and
/// whether the journal was applied.
fn review_state(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut s = BTreeMap::new();
    for sub in ["data", "data.quarantine"] {
        for (rel, bytes) in tree(&dir.join(sub)) {
            s.insert(Path::new(sub).join(rel), bytes);
        }
    }
    s.insert(
        "applied".into(),
        vec![dir.join("review.jsonl.applied").exists() as u8],
    );
    s
}

fn review(dir: &Path, what: &str, fault: Option<(u64, bool)>) -> Output {
    let data = dir.join("data");
    let flags = dir.join("flags.json");
    let mut args = vec!["review", data.to_str().unwrap()];
    if what == "apply" {
        args.extend(["--manifest", flags.to_str().unwrap(), "--apply"]);
    } else {
        args.push("--undo");
    }
    match fault {
        Some((n, abort)) => vista_fault(&args, dir, n, abort),
        None => vista(&args, dir),
    }
}

#[test]
fn apply_and_undo_complete_after_a_fault_at_any_point() {
    let tmp = tempfile::tempdir().unwrap();
    let pristine = tmp.path().join("pristine");
    review_fixture(&pristine);
    let original = review_state(&pristine);

    // The uninterrupted runs.
    let reference = tmp.path().join("reference");
    copy_tree(&pristine, &reference);
    assert!(review(&reference, "apply", None).status.success());
    let applied = review_state(&reference);
    assert!(review(&reference, "undo", None).status.success());
    let mut undone = review_state(&reference);
    assert!(
        undone
            .remove(Path::new("data/vista-clean.undone.json"))
            .is_some()
    );

    for abort in [false, true] {
        let mut faulted = 0;
        for n in 1.. {
            let dir = tmp.path().join(format!("apply-{abort}-{n}"));
            copy_tree(&pristine, &dir);
            let out = review(&dir, "apply", Some((n, abort)));
            if out.status.success() {
                assert_same(&review_state(&dir), &applied, &format!("no fault at {n}"));
                break;
            }
            faulted += 1;
            let again = review(&dir, "apply", None);
            assert!(
                again.status.success(),
                "apply after a fault at {n}: {:?}",
                text(&again)
            );
            assert_same(
                &review_state(&dir),
                &applied,
                &format!("apply after a fault at {n}"),
            );

            // Undo, interrupted at the same point, then run again.
            let out = review(&dir, "undo", Some((n, abort)));
            if !out.status.success() {
                let again = review(&dir, "undo", None);
                assert!(
                    again.status.success(),
                    "undo after a fault at {n}: {:?}",
                    text(&again)
                );
            }
            let mut state = review_state(&dir);
            state.remove(Path::new("data/vista-clean.undone.json"));
            assert_same(&state, &undone, &format!("undo after a fault at {n}"));
            assert!(n < 200, "faults never stop");
        }
        assert!(faulted >= 10, "only {faulted} fault points");
    }
    let mut back = undone.clone();
    back.remove(Path::new("applied"));
    // The quarantine keeps the record of what was undone.
    assert!(
        back.remove(Path::new("data.quarantine/moves.undone.json"))
            .is_some()
    );
    let mut orig = original.clone();
    orig.remove(Path::new("applied"));
    assert_same(&back, &orig, "undo restores the dataset exactly");
}

#[test]
fn training_resumes_to_the_same_result_after_a_fault_at_any_checkpoint_operation() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    write_dataset(&data, 20);
    let d = data.to_str().unwrap();
    let short = |out: &str| {
        let mut a = train_args(d, out);
        let epochs = a.iter().position(|x| *x == "--epochs").unwrap();
        a[epochs + 1] = "2";
        a.into_iter().map(String::from).collect::<Vec<_>>()
    };
    let whole = tmp.path().join("whole");
    let args = short(whole.to_str().unwrap());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = vista(&args, tmp.path());
    assert!(out.status.success(), "{:?}", text(&out));
    let expected = metrics(&whole);

    // Every operation of the first checkpoint and the run's end, in both modes; later
    // checkpoints repeat the first one's sequence.
    let mut points = 0;
    for abort in [false, true] {
        for n in (1..).step_by(if abort { 3 } else { 1 }) {
            let run = tmp.path().join(format!("run-{abort}-{n}"));
            let args = short(run.to_str().unwrap());
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let out = vista_fault(&args, tmp.path(), n, abort);
            if out.status.success() {
                break;
            }
            points += 1;
            let mut resume = args.clone();
            resume.push("--resume");
            let again = vista(&resume, tmp.path());
            assert!(
                again.status.success(),
                "resume after a fault at {n}: {:?}",
                text(&again)
            );
            // Every epoch's losses and accuracy, to the last bit: the resumed run trained
            // exactly as the whole one did. (model.bin holds random parameter ids, so
            // its bytes differ between any two runs.)
            assert_eq!(metrics(&run), expected, "fault at {n} (abort {abort})");
            assert!(n < 400, "faults never stop");
        }
    }
    assert!(points >= 20, "only {points} fault points");
}

#[test]
fn a_damaged_newest_checkpoint_resumes_from_the_spare() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, whole) = data_and_whole_run(tmp.path(), 20);
    let d = data.to_str().unwrap();
    // A run stopped by a failing rename a few epochs in, whose newest checkpoint is
    // then damaged (half its model file).
    let run = tmp.path().join("run");
    let mut args = train_args(d, run.to_str().unwrap());
    let mut stop = Command::new(env!("CARGO_BIN_EXE_vista"));
    stop.args(&args)
        .arg("--quiet")
        .current_dir(root())
        .env("VISTA_CACHE_DIR", tmp.path())
        .env("VISTA_FAULT_AT", "25")
        .env("VISTA_FAULT_KIND", "rename");
    assert!(!stop.output().unwrap().status.success());
    let ckpts = run.join("checkpoints");
    let latest = std::fs::read_to_string(ckpts.join("latest")).unwrap();
    assert!(latest.trim() >= "epoch-0002", "{latest}");
    let newest = ckpts.join(latest.trim());
    let bytes = std::fs::read(newest.join("model.bin")).unwrap();
    std::fs::write(newest.join("model.bin"), &bytes[..bytes.len() / 2]).unwrap();
    args.push("--resume");
    let out = vista(&args, tmp.path());
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert_eq!(metrics(&run), metrics(&whole));
}

#[test]
fn a_hostile_latest_pointer_or_model_file_is_an_error_not_a_panic() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    write_dataset(&data, 10);
    let d = data.to_str().unwrap();
    let run = tmp.path().join("run");
    let mut args = train_args(d, run.to_str().unwrap());
    let epochs = args.iter().position(|x| *x == "--epochs").unwrap();
    args[epochs + 1] = "1";
    assert!(vista(&args, tmp.path()).status.success());
    let ckpts = run.join("checkpoints");
    let latest = std::fs::read_to_string(ckpts.join("latest")).unwrap();
    std::fs::write(ckpts.join("latest"), "../../../etc").unwrap();
    let mut resume = args.clone();
    resume.push("--resume");
    let out = vista(&resume, tmp.path());
    let (_, stderr) = text(&out);
    assert!(
        !out.status.success() && stderr.contains("not a checkpoint"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    std::fs::write(ckpts.join("latest"), latest).unwrap();
    // A 73-byte model whose length prefix asks for 2^62 bytes.
    let mut bomb = vec![0u8; 64];
    bomb.push(0xfd);
    bomb.extend_from_slice(&(1u64 << 62).to_le_bytes());
    std::fs::write(run.join("model.bin"), &bomb).unwrap();
    let preds = tmp.path().join("preds.csv");
    let predict = [
        "predict",
        "--run",
        run.to_str().unwrap(),
        "--data",
        d,
        "--out",
        preds.to_str().unwrap(),
    ];
    let out = vista(&predict, tmp.path());
    let (_, stderr) = text(&out);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("model.bin"), "{stderr}");
    assert!(
        !stderr.contains("panicked") && !stderr.contains("memory allocation"),
        "{stderr}"
    );
}

#[test]
fn two_processes_never_share_a_run_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    write_dataset(&data, 40);
    let d = data.to_str().unwrap();
    let run = tmp.path().join("run");
    let args = train_args(d, run.to_str().unwrap());
    let mut first = Command::new(env!("CARGO_BIN_EXE_vista"))
        .args(&args)
        .arg("--quiet")
        .current_dir(root())
        .env("VISTA_CACHE_DIR", tmp.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the first holds the folder.
    let start = std::time::Instant::now();
    while !run.join(".lock").exists()
        || std::fs::read_to_string(run.join(".lock"))
            .unwrap_or_default()
            .is_empty()
    {
        assert!(
            start.elapsed().as_secs() < 60,
            "the first run never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let out = vista(&args, tmp.path());
    let (_, stderr) = text(&out);
    let still_running = first.try_wait().unwrap().is_none();
    first.wait().unwrap();
    if still_running {
        assert!(!out.status.success());
        assert!(
            stderr.contains("in use by another vista process")
                && stderr.contains(&first.id().to_string()),
            "{stderr}"
        );
    }
}

/// Unmounts a file system when dropped.
struct Mounted(PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// A real full disk: a run whose folder is on a 400 KiB tmpfs (its checkpoints need
/// about 600 KiB) fails with the file system's error instead of reporting success, and
/// once there is room `--resume` finishes with the uninterrupted run's metrics. Mounting
/// needs privileges; where the machine does not give them, the test says so and passes.
#[test]
fn a_full_disk_fails_the_run_and_resume_completes_it_once_there_is_room() {
    let tmp = tempfile::tempdir().unwrap();
    let small = tmp.path().join("small");
    std::fs::create_dir(&small).unwrap();
    let mount = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=400k", "vista-test"])
        .arg(&small)
        .stderr(Stdio::null())
        .status();
    if !mount.is_ok_and(|s| s.success()) {
        eprintln!("skipped: this machine does not let the test mount a tmpfs");
        return;
    }
    let _unmount = Mounted(small.clone());
    let (data, whole) = data_and_whole_run(tmp.path(), 20);
    let d = data.to_str().unwrap();

    let run = small.join("run");
    let args = train_args(d, run.to_str().unwrap());
    let out = vista(&args, tmp.path());
    let (_, stderr) = text(&out);
    assert!(!out.status.success(), "a run on a full disk succeeded");
    assert!(stderr.contains("No space left on device"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");

    let grow = Command::new("mount")
        .args(["-o", "remount,size=64m"])
        .arg(&small)
        .status()
        .unwrap();
    assert!(grow.success());
    let mut resume = args.clone();
    resume.push("--resume");
    let out = vista(&resume, tmp.path());
    assert!(out.status.success(), "{:?}", text(&out));
    assert_eq!(metrics(&run), metrics(&whole));
}

/// `vista review` on the fixture of `review_fixture`, serving on a free port, with a
/// fault at the n-th operation when given; returns the process and its address.
fn review_server(dir: &Path, fault: Option<(u64, bool)>) -> (std::process::Child, String) {
    use std::io::BufRead;
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vista"));
    cmd.args(["review", "data", "--manifest", "flags.json"])
        .args(["--bind", "127.0.0.1:0"])
        .current_dir(dir)
        .env("VISTA_CACHE_DIR", dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    if let Some((n, abort)) = fault {
        cmd.env("VISTA_FAULT_AT", n.to_string())
            .env("VISTA_FAULT_MODE", if abort { "abort" } else { "error" });
    }
    let mut child = cmd.spawn().unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_string();
    (child, addr)
}

/// One HTTP/1.0 exchange: the status and the body, or `None` when the connection broke.
fn http(addr: &str, request: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.write_all(request.as_bytes()).ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let status = out.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, out))
}

#[test]
fn no_acknowledged_review_decision_is_lost_to_a_fault() {
    let decisions = [
        (0, r#""action":"remove""#, "a/0.png"),
        (1, r#""action":"relabel","class":"c""#, "a/1.png"),
        (2, r#""action":"remove""#, "b/2.png"),
        (3, r#""action":"keep""#, "c/0.png"),
    ];
    let tmp = tempfile::tempdir().unwrap();
    let mut faulted = 0;
    for abort in [false, true] {
        for n in 1.. {
            let dir = tmp.path().join(format!("journal-{abort}-{n}"));
            review_fixture(&dir);
            std::fs::remove_file(dir.join("review.jsonl")).unwrap();
            // Decide all four, the n-th journal operation failing; then decide again,
            // on a server started afresh, what was not acknowledged.
            let mut pending: Vec<_> = decisions.iter().collect();
            let mut fault_fired = false;
            for fault in [Some((n, abort)), None] {
                let (mut server, addr) = review_server(&dir, fault);
                let (_, page) = http(&addr, &format!("GET / HTTP/1.0\r\nHost: {addr}\r\n\r\n"))
                    .expect("the page");
                let token = page
                    .split(r#"name="vista-token" content=""#)
                    .nth(1)
                    .and_then(|r| r.split('"').next())
                    .expect("the page's token")
                    .to_string();
                let mut left = Vec::new();
                for d in pending {
                    let body = format!(r#"{{"index":{},{}}}"#, d.0, d.1);
                    let request = format!(
                        "POST /api/decide HTTP/1.0\r\nHost: {addr}\r\nX-Vista-Token: {token}\r\n\
                         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    if http(&addr, &request).is_none_or(|(status, _)| status != 204) {
                        left.push(d);
                    }
                }
                server.kill().ok();
                server.wait().unwrap();
                fault_fired |= fault.is_some() && !left.is_empty();
                pending = left;
            }
            assert!(
                pending.is_empty(),
                "fault at {n}: {pending:?} never acknowledged"
            );
            let journal = vista_clean::read_journal(&dir.join("review.jsonl")).unwrap();
            let want: std::collections::HashMap<String, vista_clean::Decision> = decisions
                .iter()
                .map(|(_, action, image)| {
                    let d = serde_json::from_str(&format!("{{{action}}}")).unwrap();
                    (image.to_string(), d)
                })
                .collect();
            assert_eq!(journal, want, "fault at {n} (abort {abort})");
            // Past the last operation of the four decisions nothing fails.
            if !fault_fired {
                break;
            }
            faulted += 1;
            assert!(n < 100, "faults never stop");
        }
    }
    assert!(faulted >= 12, "only {faulted} fault points");
}
