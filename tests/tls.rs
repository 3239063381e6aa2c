//! TLS on client and peer URLs, with the real etcdctl and certificates the tests make:
//! client certificates from the trusted CA only (and not revoked), rotation of the server's
//! certificate and of the CA bundle while serving, a three-member cluster whose peers verify
//! each other (a member with a foreign CA or a wrong common name is refused), auto TLS, and
//! etcd's flag errors.
#![cfg(not(madsim))]

mod common;

use common::pki::{replace_file, Authority, Issued};
use common::{etcdctl, free_port, stop_and_read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A cairn process started with the given flags, killed when dropped.
struct Member {
    child: Child,
    endpoint: String,
    log: PathBuf,
}

impl Member {
    fn spawn(args: &[String], endpoint: String, log: &Path) -> Member {
        let log_file = std::fs::File::create(log).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_cairn"))
            .args(args)
            .env("TOKIO_WORKER_THREADS", common::WORKER_THREADS)
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .expect("start cairn");
        Member {
            child,
            endpoint,
            log: log.to_path_buf(),
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn ctl(&self, tls: &[String], args: &[&str]) -> Output {
        let mut all: Vec<&str> = tls.iter().map(String::as_str).collect();
        all.extend_from_slice(args);
        etcdctl(&self.endpoint, &all, None)
    }

    fn ok(&self, tls: &[String], args: &[&str]) -> String {
        let output = self.ctl(tls, args);
        assert!(
            output.status.success(),
            "etcdctl {tls:?} {args:?} failed: {}\nserver log:\n{}",
            String::from_utf8_lossy(&output.stderr),
            self.log_text()
        );
        String::from_utf8(output.stdout).unwrap()
    }

    fn refused(&self, tls: &[String], args: &[&str]) -> String {
        let output = self.ctl(tls, args);
        assert!(
            !output.status.success(),
            "etcdctl {tls:?} {args:?} should be refused, printed {}",
            String::from_utf8_lossy(&output.stdout)
        );
        String::from_utf8(output.stderr).unwrap()
    }

    fn wait_healthy(&mut self, tls: &[String]) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("cairn exited with {status}; log:\n{}", self.log_text());
            }
            let mut args = tls.to_vec();
            args.extend([
                "endpoint".into(),
                "health".into(),
                "--command-timeout=1s".into(),
            ]);
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            if etcdctl(&self.endpoint, &args, None).status.success() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("cairn did not become healthy; log:\n{}", self.log_text());
    }

    /// Waits until the log says `text` (logs are written as things happen).
    fn wait_for_log(&self, text: &str, patience: Duration) {
        let deadline = Instant::now() + patience;
        while Instant::now() < deadline {
            if self.log_text().contains(text) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("log never said {text:?}:\n{}", self.log_text());
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn path(file: &Path) -> String {
    file.display().to_string()
}

/// etcdctl's flags to connect trusting `ca`, presenting `client` if given.
fn client_flags(ca: &Path, client: Option<&Issued>) -> Vec<String> {
    let mut flags = vec![format!("--cacert={}", path(ca))];
    if let Some(client) = client {
        flags.push(format!("--cert={}", path(&client.cert_file)));
        flags.push(format!("--key={}", path(&client.key_file)));
    }
    flags
}

/// A one-member cluster serving clients on an https URL with `tls_args`.
fn single_member(directory: &Path, tls_args: &[String]) -> Member {
    let client_port = free_port();
    let peer_port = free_port();
    let endpoint = format!("https://127.0.0.1:{client_port}");
    let mut args = vec![
        format!("--data-dir={}", path(&directory.join("data"))),
        format!("--listen-client-urls={endpoint}"),
        format!("--advertise-client-urls={endpoint}"),
        format!("--listen-peer-urls=http://127.0.0.1:{peer_port}"),
        format!("--initial-advertise-peer-urls=http://127.0.0.1:{peer_port}"),
    ];
    args.extend_from_slice(tls_args);
    Member::spawn(&args, endpoint, &directory.join("member.log"))
}

#[test]
fn clients_need_a_certificate_from_the_trusted_ca_that_is_not_revoked() {
    let dir = tempfile::tempdir().unwrap();
    let pki = dir.path().join("pki");
    let ca = Authority::new(&pki, "ca");
    let other_ca = Authority::new(&pki, "other-ca");
    let server = ca.issue("server", "server", 1);
    let client = ca.issue("client", "client", 2);
    let revoked = ca.issue("revoked", "revoked", 3);
    let stranger = other_ca.issue("stranger", "stranger", 4);
    let crl = ca.revocation_list("crl", &[&revoked]);
    let mut member = single_member(
        dir.path(),
        &[
            format!("--cert-file={}", path(&server.cert_file)),
            format!("--key-file={}", path(&server.key_file)),
            format!("--trusted-ca-file={}", path(&ca.cert_file)),
            "--client-cert-auth".into(),
            format!("--client-crl-file={}", path(&crl)),
        ],
    );
    let trusted = client_flags(&ca.cert_file, Some(&client));
    member.wait_healthy(&trusted);

    member.ok(&trusted, &["put", "greeting", "hello"]);
    assert_eq!(
        member.ok(&trusted, &["get", "greeting"]),
        "greeting\nhello\n"
    );
    let mut watch_args = trusted.clone();
    watch_args.extend(["watch".into(), "w".into()]);
    let watch_args: Vec<&str> = watch_args.iter().map(String::as_str).collect();
    let watcher = common::etcdctl_background(&member.endpoint, &watch_args);
    std::thread::sleep(Duration::from_millis(700));
    member.ok(&trusted, &["put", "w", "over-tls"]);
    let watched = stop_and_read(watcher, Duration::from_millis(700));
    assert!(
        watched.contains("PUT\nw\nover-tls\n"),
        "watch printed {watched:?}"
    );

    // No certificate, one from another CA, a revoked one, and plain HTTP: all refused.
    member.refused(&client_flags(&ca.cert_file, None), &["get", "greeting"]);
    member.refused(
        &client_flags(&ca.cert_file, Some(&stranger)),
        &["get", "greeting"],
    );
    member.refused(
        &client_flags(&ca.cert_file, Some(&revoked)),
        &["get", "greeting"],
    );
    let plain = member.endpoint.replace("https://", "http://");
    assert!(!etcdctl(&plain, &["get", "greeting"], None).status.success());
    member.wait_for_log("TLS handshake refused", Duration::from_secs(5));
    // The listener still serves after every refusal.
    assert_eq!(
        member.ok(&trusted, &["get", "greeting"]),
        "greeting\nhello\n"
    );
}

/// With `--client-cert-auth` and auth on, a verified client certificate's common name is
/// the user (etcd's `AuthInfoFromTLS`): no password, no token, its roles apply.
#[test]
fn a_client_certificate_authenticates_as_its_common_name() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Authority::new(&dir.path().join("pki"), "ca");
    let server = ca.issue("server", "server", 1);
    let root = ca.issue("root", "root", 2);
    let alice = ca.issue("alice", "alice", 3);
    let nobody = ca.issue("nobody", "nobody", 4);
    let mut member = single_member(
        dir.path(),
        &[
            format!("--cert-file={}", path(&server.cert_file)),
            format!("--key-file={}", path(&server.key_file)),
            format!("--trusted-ca-file={}", path(&ca.cert_file)),
            "--client-cert-auth".into(),
            "--bcrypt-cost=4".into(),
        ],
    );
    let as_root = client_flags(&ca.cert_file, Some(&root));
    let as_alice = client_flags(&ca.cert_file, Some(&alice));
    let as_nobody = client_flags(&ca.cert_file, Some(&nobody));
    member.wait_healthy(&as_root);
    member.ok(&as_root, &["user", "add", "root:unused"]);
    member.ok(&as_root, &["user", "add", "alice", "--no-password"]);
    member.ok(&as_root, &["role", "add", "reader"]);
    member.ok(
        &as_root,
        &[
            "role",
            "grant-permission",
            "reader",
            "read",
            "app/",
            "--prefix=true",
        ],
    );
    member.ok(&as_root, &["user", "grant-role", "alice", "reader"]);
    member.ok(&as_root, &["auth", "enable"]);

    member.ok(&as_root, &["put", "app/x", "1"]);
    assert_eq!(member.ok(&as_alice, &["get", "app/x"]), "app/x\n1\n");
    for (flags, args) in [
        (&as_alice, &["put", "app/x", "2"][..]),
        (&as_alice, &["user", "list"]),
        (&as_nobody, &["get", "app/x"]),
    ] {
        let refused = member.refused(flags, args);
        assert!(
            refused.contains("etcdserver: permission denied"),
            "{args:?}: {refused}"
        );
    }
    // A password still works beside the certificate, and wins over it.
    let mut with_password = as_alice.clone();
    with_password.push("--user=root:unused".into());
    member.ok(&with_password, &["put", "app/y", "1"]);
}

#[test]
fn certificates_and_the_ca_bundle_rotate_while_serving() {
    let dir = tempfile::tempdir().unwrap();
    let pki = dir.path().join("pki");
    let first_ca = Authority::new(&pki, "first-ca");
    let second_ca = Authority::new(&pki, "second-ca");
    let first_server = first_ca.issue("first-server", "server", 1);
    let second_server = second_ca.issue("second-server", "server", 2);
    let first_client = first_ca.issue("first-client", "client", 3);
    let second_client = second_ca.issue("second-client", "client", 4);
    // The files the member reads, rewritten by the test as an operator's tooling would.
    let live = dir.path().join("live");
    std::fs::create_dir_all(&live).unwrap();
    let (cert_file, key_file, bundle) = (
        live.join("server.pem"),
        live.join("server-key.pem"),
        live.join("ca-bundle.pem"),
    );
    replace_file(&first_server.cert_file, &cert_file);
    replace_file(&first_server.key_file, &key_file);
    replace_file(&first_ca.cert_file, &bundle);
    let mut member = single_member(
        dir.path(),
        &[
            format!("--cert-file={}", path(&cert_file)),
            format!("--key-file={}", path(&key_file)),
            format!("--trusted-ca-file={}", path(&bundle)),
            "--client-cert-auth".into(),
        ],
    );
    let first = client_flags(&first_ca.cert_file, Some(&first_client));
    member.wait_healthy(&first);
    member.ok(&first, &["put", "k", "v"]);

    // The CA bundle: a client of the second CA is refused until the bundle names it.
    let second_client_first_server = client_flags(&first_ca.cert_file, Some(&second_client));
    member.refused(&second_client_first_server, &["get", "k"]);
    let both = pki.join("both.pem");
    let mut text = std::fs::read_to_string(&first_ca.cert_file).unwrap();
    text.push_str(&std::fs::read_to_string(&second_ca.cert_file).unwrap());
    std::fs::write(&both, text).unwrap();
    replace_file(&both, &bundle);
    assert_eq!(
        member.ok(&second_client_first_server, &["get", "k"]),
        "k\nv\n"
    );

    // The server's certificate: the next connection gets the new one.
    replace_file(&second_server.key_file, &key_file);
    replace_file(&second_server.cert_file, &cert_file);
    let second = client_flags(&second_ca.cert_file, Some(&first_client));
    assert_eq!(member.ok(&second, &["get", "k"]), "k\nv\n");
    member.refused(&first, &["get", "k"]);
    member.wait_for_log("TLS files changed: reloaded them", Duration::from_secs(1));

    // A bad new file keeps the certificate in use, and says why.
    std::fs::write(pki.join("garbage.pem"), "not a certificate\n").unwrap();
    replace_file(&pki.join("garbage.pem"), &cert_file);
    assert_eq!(member.ok(&second, &["get", "k"]), "k\nv\n");
    member.wait_for_log(
        "do not load: keeping the ones in use",
        Duration::from_secs(1),
    );
}

/// Flags for member `index` of a cluster whose client and peer URLs are all https.
fn cluster_member_args(
    directory: &Path,
    name: &str,
    ports: (u16, u16),
    initial_cluster: &str,
    state: &str,
    ca: &Authority,
    certificate: &Issued,
) -> (Vec<String>, String) {
    let (client_port, peer_port) = ports;
    let endpoint = format!("https://127.0.0.1:{client_port}");
    let peer_url = format!("https://127.0.0.1:{peer_port}");
    let cert = path(&certificate.cert_file);
    let key = path(&certificate.key_file);
    let ca = path(&ca.cert_file);
    let args = vec![
        format!("--name={name}"),
        format!("--data-dir={}", path(&directory.join(name))),
        format!("--listen-client-urls={endpoint}"),
        format!("--advertise-client-urls={endpoint}"),
        format!("--listen-peer-urls={peer_url}"),
        format!("--initial-advertise-peer-urls={peer_url}"),
        format!("--initial-cluster={initial_cluster}"),
        format!("--initial-cluster-state={state}"),
        "--initial-cluster-token=tls-cluster".into(),
        format!("--cert-file={cert}"),
        format!("--key-file={key}"),
        format!("--trusted-ca-file={ca}"),
        "--client-cert-auth".into(),
        format!("--peer-cert-file={cert}"),
        format!("--peer-key-file={key}"),
        format!("--peer-trusted-ca-file={ca}"),
        "--peer-client-cert-auth".into(),
        "--peer-cert-allowed-cn=member".into(),
        // The test adds two would-be learners at once (etcd's default allows one).
        "--max-learners=2".into(),
    ];
    (args, endpoint)
}

#[test]
fn three_members_verify_each_other_and_refuse_strangers() {
    let dir = tempfile::tempdir().unwrap();
    let pki = dir.path().join("pki");
    let ca = Authority::new(&pki, "ca");
    let other_ca = Authority::new(&pki, "other-ca");
    let client = ca.issue("client", "client", 100);
    let ports: Vec<(u16, u16)> = (0..3).map(|_| (free_port(), free_port())).collect();
    let initial = ports
        .iter()
        .enumerate()
        .map(|(index, (_, peer))| format!("m{index}=https://127.0.0.1:{peer}"))
        .collect::<Vec<_>>()
        .join(",");
    let mut members: Vec<Member> = ports
        .iter()
        .enumerate()
        .map(|(index, ports)| {
            let name = format!("m{index}");
            let certificate = ca.issue(&name, "member", index as u64 + 1);
            let (args, endpoint) = cluster_member_args(
                dir.path(),
                &name,
                *ports,
                &initial,
                "new",
                &ca,
                &certificate,
            );
            Member::spawn(&args, endpoint, &dir.path().join(format!("{name}.log")))
        })
        .collect();
    let tls = client_flags(&ca.cert_file, Some(&client));
    for member in members.iter_mut() {
        member.wait_healthy(&tls);
    }
    members[0].ok(&tls, &["put", "replicated", "over-peer-tls"]);
    assert_eq!(
        members[2].ok(&tls, &["get", "replicated"]),
        "replicated\nover-peer-tls\n"
    );
    let list = members[1].ok(&tls, &["member", "list"]);
    assert_eq!(list.matches("https://127.0.0.1:").count(), 6, "{list}");

    // Two would-be learners: one with a certificate from another CA, one from the right CA
    // with a common name --peer-cert-allowed-cn does not allow.
    let strangers = [
        ("m3", other_ca.issue("m3", "member", 50)),
        ("m4", ca.issue("m4", "intruder", 51)),
    ];
    let mut started = Vec::new();
    let mut cluster = initial.clone();
    for (name, certificate) in &strangers {
        let ports = (free_port(), free_port());
        let peer_url = format!("https://127.0.0.1:{}", ports.1);
        members[0].ok(
            &tls,
            &[
                "member",
                "add",
                name,
                &format!("--peer-urls={peer_url}"),
                "--learner",
            ],
        );
        cluster.push_str(&format!(",{name}={peer_url}"));
        let (args, endpoint) = cluster_member_args(
            dir.path(),
            name,
            ports,
            &cluster,
            "existing",
            &ca,
            certificate,
        );
        started.push(Member::spawn(
            &args,
            endpoint,
            &dir.path().join(format!("{name}.log")),
        ));
    }
    // The members log each refusal, with its reason.
    let foreign_ca = "UnknownIssuer";
    let wrong_name = "common name \\\"intruder\\\" is not one of the allowed [\\\"member\\\"]";
    let logs = || members.iter().map(Member::log_text).collect::<String>();
    let deadline = Instant::now() + Duration::from_secs(15);
    while !(logs().contains(foreign_ca) && logs().contains(wrong_name)) && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(200));
    }
    let logs = logs();
    assert!(
        logs.contains(foreign_ca),
        "no foreign-CA refusal logged:\n{logs}"
    );
    assert!(
        logs.contains(wrong_name),
        "no common-name refusal logged:\n{logs}\nm4:\n{}",
        started[1].log_text()
    );
    // Neither ever serves: a member serves clients only once it has joined.
    for stranger in &started {
        assert!(!stranger
            .ctl(&tls, &["endpoint", "health", "--command-timeout=1s"])
            .status
            .success());
    }
    // The three go on serving.
    members[1].ok(&tls, &["put", "after", "strangers"]);
    assert_eq!(members[2].ok(&tls, &["get", "after"]), "after\nstrangers\n");
}

#[test]
fn auto_tls_generates_certificates_once_and_serves_with_them() {
    let dir = tempfile::tempdir().unwrap();
    let client_port = free_port();
    let peer_port = free_port();
    let endpoint = format!("https://127.0.0.1:{client_port}");
    let peer_url = format!("https://127.0.0.1:{peer_port}");
    let data_dir = dir.path().join("data");
    let args = vec![
        format!("--data-dir={}", path(&data_dir)),
        format!("--listen-client-urls={endpoint}"),
        format!("--advertise-client-urls={endpoint}"),
        format!("--listen-peer-urls={peer_url}"),
        format!("--initial-advertise-peer-urls={peer_url}"),
        "--auto-tls".into(),
        "--peer-auto-tls".into(),
        "--self-signed-cert-validity=2".into(),
    ];
    // etcdctl 3.4 skips verification only with both flags (as against etcd itself).
    let insecure = vec![
        "--insecure-transport=false".to_string(),
        "--insecure-skip-tls-verify".to_string(),
    ];
    let mut member = Member::spawn(&args, endpoint.clone(), &dir.path().join("first.log"));
    member.wait_healthy(&insecure);
    member.ok(&insecure, &["put", "auto", "tls"]);
    // etcd's HTTP endpoints share the TLS port: curl negotiates HTTP/2 by ALPN, or 1.1.
    for (version, expected) in [("--http2", "2"), ("--http1.1", "1.1")] {
        let reply = common::curl(&["--insecure", version, &format!("{endpoint}/health")]);
        assert_eq!(
            (reply.status, reply.version.as_str(), reply.body.as_str()),
            (200, expected, r#"{"health":"true","reason":""}"#)
        );
    }
    let client_cert = data_dir.join("fixtures/client/cert.pem");
    let peer_key = data_dir.join("fixtures/peer/key.pem");
    let generated = std::fs::read(&client_cert).unwrap();
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&peer_key).unwrap().permissions().mode();
    assert_eq!(
        mode & 0o777,
        0o600,
        "the key must be readable by its owner only"
    );
    // Without skipping verification, etcdctl does not trust a self-signed certificate.
    member.refused(&[], &["get", "auto"]);
    drop(member);

    let mut member = Member::spawn(&args, endpoint.clone(), &dir.path().join("second.log"));
    member.wait_healthy(&insecure);
    assert_eq!(member.ok(&insecure, &["get", "auto"]), "auto\ntls\n");
    assert_eq!(
        std::fs::read(&client_cert).unwrap(),
        generated,
        "kept, not regenerated"
    );
}

#[test]
fn tls_flag_errors_name_the_problem_as_etcd_does() {
    let dir = tempfile::tempdir().unwrap();
    let pki = dir.path().join("pki");
    let ca = Authority::new(&pki, "ca");
    let server = ca.issue("server", "server", 1);
    let cert = format!("--cert-file={}", path(&server.cert_file));
    let key = format!("--key-file={}", path(&server.key_file));
    let wrong_key = format!("--key-file={}", path(&ca.cert_file));
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec![],
            "TLS key/cert (--cert-file, --key-file) must be provided for client url https://",
        ),
        (
            vec![
                cert.clone(),
                key.clone(),
                "--cipher-suites=TLS_FAKE_SUITE".into(),
            ],
            "unexpected TLS cipher suite \"TLS_FAKE_SUITE\"",
        ),
        (
            vec![
                cert.clone(),
                key.clone(),
                "--tls-min-version=TLS1.3".into(),
                "--cipher-suites=TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256".into(),
            ],
            "cipher suites cannot be configured when only TLS1.3 is enabled",
        ),
        (
            vec![cert.clone(), key.clone(), "--tls-min-version=TLS1.0".into()],
            "unexpected TLS version \"TLS1.0\" (must be one of: TLS1.2, TLS1.3)",
        ),
        (vec![cert.clone(), wrong_key], "ca.pem"),
        (
            vec![cert.clone()],
            "--cert-file and --key-file must both be given",
        ),
    ];
    for (index, (extra, expected)) in cases.into_iter().enumerate() {
        let port = free_port();
        let output = Command::new(env!("CARGO_BIN_EXE_cairn"))
            .arg(format!(
                "--data-dir={}",
                path(&dir.path().join(format!("d{index}")))
            ))
            .arg(format!("--listen-client-urls=https://127.0.0.1:{port}"))
            .arg(format!(
                "--listen-peer-urls=http://127.0.0.1:{}",
                free_port()
            ))
            .args(&extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{extra:?} started");
        assert!(stderr.contains(expected), "{extra:?}: {stderr}");
    }
}
