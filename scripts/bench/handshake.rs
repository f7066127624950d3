//! Cold start -> go-plugin handshake line, for several provider binaries.
//!
//! Used by scripts/bench-protocol.sh, which compiles it with `rustc -O`
//! (standard library only, no Cargo: a second LTO build of the dependency
//! tree under the bench profile would take minutes on the shared 2 cores).
//! It replaced a Python helper whose own spawn cost (about 1 ms, the
//! `floor` row) sat in every median; Rust's `Command` spawns with
//! posix_spawn, so the floor is a fraction of that.
//!
//! For each run, each binary is spawned with the environment Terraform
//! gives a plugin (magic cookie, protocol versions 5,6, port range,
//! PLUGIN_CLIENT_CERT); the time from just before the spawn to the arrival
//! of the first complete stdout line is taken, and the process is killed.
//! Binaries are interleaved run by run so that a burst of load on the
//! shared machine hits all of them alike, and the order rotates from run to
//! run (run i starts with binary i mod n), so each binary follows each other
//! one equally often: a spawn right after the Go provider's 20 MB process
//! was killed is slower (its teardown and the caches it left), and with a
//! fixed order that cost fell on the same binaries every run (until
//! 2026-12-06: floor, then proxtalos, right after null). Every spawn gets its own empty
//! TMPDIR, removed afterwards, so the sockets a killed provider leaves
//! behind are cleaned up.
//!
//!   handshake --runs 50 --warmup 3 --cert CERT.pem --tmp DIR --json OUT.json NAME=PATH[=PREFIX] ...
//!
//! PREFIX (e.g. "1|6|unix|") is checked against each handshake line. A
//! binary named "floor" with no PREFIX is the measurement-floor reference
//! (a trivial program that prints one line).

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const COOKIE: &str = "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2";

fn die(msg: &str) -> ! {
    eprintln!("handshake: {msg}");
    std::process::exit(1);
}

/// One spawn: (seconds to the first line, the line).
fn one(path: &str, env: &[(&str, String)], tmp: &std::path::Path) -> (f64, String) {
    std::fs::create_dir_all(tmp).unwrap_or_else(|e| die(&format!("{}: {e}", tmp.display())));
    let mut cmd = Command::new(path);
    cmd.env_clear().envs(env.iter().map(|(k, v)| (*k, v.as_str()))).env("TMPDIR", tmp);
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::null());
    let t0 = Instant::now();
    let mut child = cmd.spawn().unwrap_or_else(|e| die(&format!("{path}: {e}")));
    let mut out = child.stdout.take().unwrap_or_else(|| die("no stdout pipe"));
    let mut buf = Vec::new();
    let mut chunk = [0u8; 65536];
    let elapsed = loop {
        if t0.elapsed() > Duration::from_secs(10) {
            die(&format!("{path}: no handshake line within 10 s"));
        }
        match out.read(&mut chunk) {
            Ok(0) => die(&format!("{path}: exited before the handshake line ({:?})", child.wait())),
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                if buf.contains(&b'\n') {
                    break t0.elapsed();
                }
            }
            Err(e) => die(&format!("{path}: reading stdout: {e}")),
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(tmp);
    let line = String::from_utf8_lossy(buf.split(|b| *b == b'\n').next().unwrap_or_default()).into_owned();
    (elapsed.as_secs_f64(), line)
}

fn quantile(xs: &[f64], q: f64) -> f64 {
    let mut s = xs.to_vec();
    s.sort_by(f64::total_cmp);
    // nearest rank, as in most latency reports (the Python helper's rule)
    let k = ((q * s.len() as f64 + 0.5).round() as isize - 1).clamp(0, s.len() as isize - 1) as usize;
    s[k]
}

fn median(xs: &[f64]) -> f64 {
    let mut s = xs.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n % 2 == 1 { s[n / 2] } else { (s[n / 2 - 1] + s[n / 2]) / 2.0 }
}

fn json_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (mut runs, mut warmup) = (50usize, 3usize);
    let (mut cert, mut tmp, mut json) = (None, None, None);
    let mut bins: Vec<(String, String, Option<String>)> = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = || it.next().cloned().unwrap_or_else(|| die(&format!("{a} needs a value")));
        match a.as_str() {
            "--runs" => runs = val().parse().unwrap_or_else(|_| die("--runs takes a number")),
            "--warmup" => warmup = val().parse().unwrap_or_else(|_| die("--warmup takes a number")),
            "--cert" => cert = Some(val()),
            "--tmp" => tmp = Some(val()),
            "--json" => json = Some(val()),
            spec => {
                let mut p = spec.splitn(3, '=');
                let name = p.next().unwrap_or_default().to_string();
                let path = p.next().unwrap_or_else(|| die(&format!("{spec}: want NAME=PATH[=PREFIX]"))).to_string();
                bins.push((name, path, p.next().map(str::to_string)));
            }
        }
    }
    let cert = std::fs::read_to_string(cert.unwrap_or_else(|| die("--cert is required"))).unwrap_or_else(|e| die(&e.to_string()));
    let tmp = std::fs::canonicalize(tmp.unwrap_or_else(|| die("--tmp is required"))).unwrap_or_else(|e| die(&e.to_string()));
    let json = json.unwrap_or_else(|| die("--json is required"));
    let env = [
        ("PATH", std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".to_string())),
        ("TF_PLUGIN_MAGIC_COOKIE", COOKIE.to_string()),
        ("PLUGIN_PROTOCOL_VERSIONS", "5,6".to_string()),
        ("PLUGIN_MIN_PORT", "10000".to_string()),
        ("PLUGIN_MAX_PORT", "25000".to_string()),
        ("PLUGIN_CLIENT_CERT", cert),
    ];
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); bins.len()];
    let mut lines: Vec<String> = vec![String::new(); bins.len()];
    let mut seq = 0;
    for i in 0..warmup + runs {
        for k in 0..bins.len() {
            let b = (i + k) % bins.len();
            let (name, path, prefix) = &bins[b];
            seq += 1;
            let (dt, line) = one(path, &env, &tmp.join(format!("hs{seq}")));
            if let Some(p) = prefix
                && !line.starts_with(p.as_str())
            {
                die(&format!("{name}: unexpected handshake line {:?} (want {p:?}...)", &line[..line.len().min(80)]));
            }
            lines[b] = line;
            if i >= warmup {
                samples[b].push(dt);
            }
        }
    }
    let mut out = String::from("{");
    for (b, (name, _, _)) in bins.iter().enumerate() {
        let xs = &samples[b];
        let (med, p90) = (median(xs) * 1e3, quantile(xs, 0.90) * 1e3);
        let (min, max) = (xs.iter().copied().fold(f64::MAX, f64::min) * 1e3, xs.iter().copied().fold(0.0, f64::max) * 1e3);
        let line = if lines[b].is_empty() {
            "(empty line)".to_string()
        } else {
            format!("{}|…", lines[b].split('|').take(5).collect::<Vec<_>>().join("|"))
        };
        println!("  {name:<10} median {med:7.2} ms  p90 {p90:7.2} ms  min {min:6.2}  max {max:7.2}  ({} runs)  {line}", xs.len());
        if b > 0 {
            out.push(',');
        }
        out.push_str(&format!(
            "\n {}: {{\"runs\": {}, \"median_ms\": {med}, \"p90_ms\": {p90}, \"min_ms\": {min}, \"max_ms\": {max}, \"line\": {}}}",
            json_str(name),
            xs.len(),
            json_str(&line)
        ));
    }
    out.push_str("\n}\n");
    std::fs::write(&json, out).unwrap_or_else(|e| die(&format!("{json}: {e}")));
}
