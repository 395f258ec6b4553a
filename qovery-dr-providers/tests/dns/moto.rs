//! moto servers (Route53 emulation) on 127.0.0.1, one of each kind per test binary:
//!
//! - [`moto_signed`]: signature verification on. An IAM user and access key are
//!   created in moto; from then on wrongly signed requests get
//!   `SignatureDoesNotMatch`. moto 5.x (5.0.28 and 5.2.5 checked) also rejects
//!   correctly signed Route53 GET requests, from boto3 as well as from the Rust
//!   SDK, so this server proves signing with POST operations only.
//! - [`moto`]: signature verification off, for the conformance suite (which reads).

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub struct Moto {
    pub url: String,
    pub access_key: String,
    pub secret_key: String,
}

fn binary() -> PathBuf {
    let p = std::env::var_os("QDR_MOTO_SERVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.tools/moto/bin/moto_server")));
    assert!(
        p.exists(),
        "moto_server is missing at {}: run ./scripts/test (it installs moto[server] into .tools/moto) or set QDR_MOTO_SERVER",
        p.display()
    );
    p
}

const CREATE_USER: &str = r#"
import boto3, json, sys
iam = boto3.client("iam", endpoint_url=sys.argv[1], region_name="us-east-1",
                   aws_access_key_id="bootstrap", aws_secret_access_key="bootstrap")
iam.create_user(UserName="qdr")
iam.put_user_policy(UserName="qdr", PolicyName="all", PolicyDocument=json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
key = iam.create_access_key(UserName="qdr")["AccessKey"]
print(json.dumps({"id": key["AccessKeyId"], "secret": key["SecretAccessKey"]}))
"#;

/// Signature verification off: any credentials are accepted.
pub fn moto() -> &'static Moto {
    static MOTO: OnceLock<Moto> = OnceLock::new();
    MOTO.get_or_init(|| start(false))
}

/// Signature verification on, with a real IAM access key.
pub fn moto_signed() -> &'static Moto {
    static MOTO: OnceLock<Moto> = OnceLock::new();
    MOTO.get_or_init(|| start(true))
}

fn start(verify_signatures: bool) -> Moto {
    {
        let server = binary();
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let log = std::env::temp_dir().join(format!("qdr-moto-{}.log", std::process::id()));
        let out = std::fs::File::create(&log).unwrap();
        let mut command = Command::new(&server);
        command.args(["-H", "127.0.0.1", "-p", &port.to_string()]);
        if verify_signatures {
            // The three IAM calls below run unauthenticated; every later request must be signed.
            command.env("INITIAL_NO_AUTH_ACTION_COUNT", "3");
        }
        let child = command.stdout(Stdio::from(out.try_clone().unwrap())).stderr(Stdio::from(out)).spawn().unwrap();
        crate::reaper::kill_when_tests_exit(child.id());
        std::mem::forget(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "moto did not start: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let url = format!("http://127.0.0.1:{port}");
        if !verify_signatures {
            return Moto { url, access_key: "AKIDMOTOTEST".to_owned(), secret_key: "moto-test-secret".to_owned() };
        }
        let python = server.with_file_name("python3");
        let created = Command::new(&python).arg("-c").arg(CREATE_USER).arg(&url).output().unwrap();
        assert!(
            created.status.success(),
            "creating the IAM user in moto failed: {}",
            String::from_utf8_lossy(&created.stderr)
        );
        let key: serde_json::Value = serde_json::from_slice(&created.stdout).unwrap();
        Moto {
            url,
            access_key: key["id"].as_str().unwrap().to_owned(),
            secret_key: key["secret"].as_str().unwrap().to_owned(),
        }
    }
}
