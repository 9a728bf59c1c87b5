//! A little PKI for the TLS tests, made with the `openssl` command line: CAs,
//! certificates for given names, with given dates.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::require_tool;

/// A little PKI made with the `openssl` command line.
pub struct Pki {
    dir: PathBuf,
}

/// A key and its certificate (PEM files).
#[derive(Clone)]
pub struct Cert {
    pub key: PathBuf,
    pub cert: PathBuf,
}

fn openssl(args: &[&str]) {
    let exe = require_tool("openssl", "openssl");
    super::run_ok(Command::new(exe).args(args).stdin(Stdio::null()));
}

pub fn s(p: &Path) -> &str {
    p.to_str().expect("utf8 path")
}

impl Pki {
    pub fn new(dir: &Path) -> Pki {
        let dir = dir.join("pki");
        std::fs::create_dir_all(dir.join("issued")).expect("mkdir");
        Pki { dir }
    }

    /// A self-signed CA.
    pub fn ca(&self, name: &str) -> Cert {
        let c = Cert {
            key: self.dir.join(format!("{name}.key")),
            cert: self.dir.join(format!("{name}.pem")),
        };
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-sha256",
            "-days",
            "30",
            "-subj",
            &format!("/CN={name}"),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
            "-keyout",
            s(&c.key),
            "-out",
            s(&c.cert),
        ]);
        c
    }

    /// A certificate from `ca` for `sans` (e.g. "DNS:localhost,IP:127.0.0.1"),
    /// valid now, or between `dates` (YYYYMMDDHHMMSSZ).
    pub fn issue(&self, ca: &Cert, name: &str, sans: &str, dates: Option<(&str, &str)>) -> Cert {
        let c = Cert {
            key: self.dir.join(format!("{name}.key")),
            cert: self.dir.join(format!("{name}.pem")),
        };
        let csr = self.dir.join(format!("{name}.csr"));
        let ext = self.dir.join(format!("{name}.ext"));
        std::fs::write(
            &ext,
            format!(
                "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n\
                 extendedKeyUsage=serverAuth,clientAuth\nsubjectAltName={sans}\n"
            ),
        )
        .expect("ext");
        openssl(&[
            "req",
            "-new",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-sha256",
            "-subj",
            &format!("/CN={name}"),
            "-keyout",
            s(&c.key),
            "-out",
            s(&csr),
        ]);
        match dates {
            None => openssl(&[
                "x509",
                "-req",
                "-in",
                s(&csr),
                "-CA",
                s(&ca.cert),
                "-CAkey",
                s(&ca.key),
                "-CAcreateserial",
                "-days",
                "30",
                "-sha256",
                "-extfile",
                s(&ext),
                "-out",
                s(&c.cert),
            ]),
            Some((from, to)) => {
                // `openssl ca` is the one that takes arbitrary dates.
                let cnf = self.dir.join("ca.cnf");
                let db = self.dir.join("index.txt");
                std::fs::write(&db, "").expect("index");
                std::fs::write(self.dir.join("serial"), "1000\n").expect("serial");
                std::fs::write(
                    &cnf,
                    format!(
                        "[ca]\ndefault_ca = test\n[test]\ndatabase = {}\nnew_certs_dir = {}\n\
                         serial = {}\ndefault_md = sha256\npolicy = any\nunique_subject = no\n\
                         [any]\ncommonName = supplied\n",
                        s(&db),
                        s(&self.dir.join("issued")),
                        s(&self.dir.join("serial"))
                    ),
                )
                .expect("cnf");
                openssl(&[
                    "ca",
                    "-batch",
                    "-notext",
                    "-config",
                    s(&cnf),
                    "-cert",
                    s(&ca.cert),
                    "-keyfile",
                    s(&ca.key),
                    "-in",
                    s(&csr),
                    "-startdate",
                    from,
                    "-enddate",
                    to,
                    "-extfile",
                    s(&ext),
                    "-out",
                    s(&c.cert),
                ]);
            }
        }
        c
    }
}
