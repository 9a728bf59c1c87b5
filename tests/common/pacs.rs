//! Real PACS for the Query/Retrieve tests: Orthanc and DCMTK's dcmqrscp, started
//! on free loopback ports with temporary storage, stopped (SIGKILL) when dropped.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::{KillOnDrop, free_port, require_tool, wait_port};

/// An Orthanc server with its own storage folder.
pub struct Orthanc {
    pub http: u16,
    pub dicom: u16,
    config: PathBuf,
    process: Option<KillOnDrop>,
}

impl Orthanc {
    /// Start Orthanc (AE title ORTHANC) knowing `modalities` (name, AE, port) as
    /// C-MOVE destinations on 127.0.0.1.
    pub fn start(dir: &Path, modalities: &[(&str, &str, u16)]) -> Orthanc {
        let mods: serde_json::Map<String, serde_json::Value> = modalities
            .iter()
            .map(|(n, ae, p)| (n.to_string(), serde_json::json!([ae, "127.0.0.1", p])))
            .collect();
        Orthanc::start_with(dir, mods, serde_json::json!({}))
    }

    /// Start Orthanc with `modalities` as Orthanc spells them, and `extra`
    /// configuration keys (DICOM TLS, say) over the defaults.
    pub fn start_with(
        dir: &Path,
        mods: serde_json::Map<String, serde_json::Value>,
        extra: serde_json::Value,
    ) -> Orthanc {
        let db = dir.join("orthanc-db");
        std::fs::create_dir_all(&db).expect("mkdir");
        let (http, dicom) = (free_port(), free_port());
        let mut config = serde_json::json!({
            "Name": "lightbox-test", "StorageDirectory": db, "IndexDirectory": db,
            "HttpPort": http, "DicomPort": dicom, "DicomAet": "ORTHANC",
            "RemoteAccessAllowed": false, "AuthenticationEnabled": false,
            "DicomModalities": mods, "Plugins": [],
            "DicomScpTimeout": 30, "StableAge": 1, "DicomCheckCalledAet": true,
            // Callers it does not know may query and retrieve (C-MOVE still only
            // sends to destinations in DicomModalities).
            "DicomAlwaysAllowFind": true, "DicomAlwaysAllowGet": true,
            "DicomAlwaysAllowMove": true
        });
        if let (Some(c), Some(e)) = (config.as_object_mut(), extra.as_object()) {
            c.extend(e.clone());
        }
        let path = dir.join("orthanc.json");
        std::fs::write(&path, config.to_string()).expect("config");
        let mut o = Orthanc {
            http,
            dicom,
            config: path,
            process: None,
        };
        o.restart();
        o
    }

    /// (Re)start the server on the same storage and ports.
    pub fn restart(&mut self) {
        let exe = require_tool("Orthanc", "orthanc");
        self.process = Some(KillOnDrop(
            Command::new(exe)
                .arg(&self.config)
                .env("TCP_NODELAY", "1")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start Orthanc"),
        ));
        wait_port(self.http, "Orthanc HTTP");
        wait_port(self.dicom, "Orthanc DICOM");
    }

    /// SIGKILL the server.
    pub fn kill(&mut self) {
        self.process = None;
    }

    /// Upload files through the REST API (stored as they are, no transcoding),
    /// one curl process for all of them.
    pub fn upload(&self, files: &[PathBuf]) {
        let exe = require_tool("curl", "curl");
        for chunk in files.chunks(200) {
            let mut cmd = Command::new(&exe);
            cmd.arg("-sS").arg("--fail");
            for (i, f) in chunk.iter().enumerate() {
                if i > 0 {
                    cmd.arg("--next");
                }
                cmd.args([
                    "-o",
                    "/dev/null",
                    "-X",
                    "POST",
                    &format!("http://127.0.0.1:{}/instances", self.http),
                    "--data-binary",
                    &format!("@{}", f.display()),
                ]);
            }
            super::run_ok(&mut cmd);
        }
    }

    /// GET a REST resource.
    pub fn get(&self, path: &str) -> Vec<u8> {
        let exe = require_tool("curl", "curl");
        super::run_ok(Command::new(exe).args([
            "-sS",
            "--fail",
            &format!("http://127.0.0.1:{}{path}", self.http),
        ]))
        .stdout
    }

    /// POST `body` (text) to a REST resource; its JSON answer.
    pub fn post_json(&self, path: &str, body: &str) -> serde_json::Value {
        let exe = require_tool("curl", "curl");
        let out = super::run_ok(Command::new(exe).args([
            "-sS",
            "--fail",
            "-X",
            "POST",
            "--data-binary",
            body,
            &format!("http://127.0.0.1:{}{path}", self.http),
        ]))
        .stdout;
        serde_json::from_slice(&out).expect("json")
    }

    pub fn get_json(&self, path: &str) -> serde_json::Value {
        serde_json::from_slice(&self.get(path)).expect("json")
    }
}

/// DCMTK's dcmqrscp with its own database folder, AE title DCMQR.
pub struct Dcmqrscp {
    pub port: u16,
    _process: KillOnDrop,
}

impl Dcmqrscp {
    /// A Lightbox configuration in `dir` naming this server as node "pacs",
    /// retrieved from by C-GET; its path.
    pub fn get_config(&self, dir: &Path) -> std::path::PathBuf {
        let config = dir.join("config.toml");
        std::fs::write(
            &config,
            format!(
                "ae_title = \"LIGHTBOX\"\n\n[[nodes]]\nname = \"pacs\"\nae_title = \"DCMQR\"\n\
                 host = \"127.0.0.1\"\nport = {}\nretrieve = \"get\"\n",
                self.port
            ),
        )
        .expect("config");
        config
    }

    /// Start it holding `files` (copied into its storage area and registered with
    /// `dcmqridx`, so compressed files keep their syntax) and knowing `hosts`
    /// (name, AE, port) as C-MOVE destinations. Its C-MOVE associations propose
    /// only uncompressed syntaxes (it cannot convert compressed files for them;
    /// C-GET, where Lightbox proposes each syntax, returns them as stored).
    pub fn start(dir: &Path, hosts: &[(&str, &str, u16)], files: &[PathBuf]) -> Dcmqrscp {
        let exe = require_tool("dcmqrscp", "dcmtk");
        let db = dir.join("dcmqrscp-db");
        std::fs::create_dir_all(&db).expect("mkdir");
        let copies: Vec<PathBuf> = files
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let dst = db.join(format!("f{i:05}.dcm"));
                std::fs::copy(f, &dst).expect("copy into dcmqrscp storage");
                dst
            })
            .collect();
        let idx = require_tool("dcmqridx", "dcmtk");
        for chunk in copies.chunks(500) {
            super::run_ok(Command::new(&idx).arg(&db).args(chunk));
        }
        let port = free_port();
        let host_lines: String = hosts
            .iter()
            .map(|(n, ae, p)| format!("{n} = ({ae}, 127.0.0.1, {p})\n"))
            .collect();
        let cfg = format!(
            "NetworkTCPPort = {port}\nMaxPDUSize = 65536\nMaxAssociations = 16\n\
             HostTable BEGIN\n{host_lines}HostTable END\nVendorTable BEGIN\nVendorTable END\n\
             AETable BEGIN\nDCMQR {} RW (5000, 2048mb) ANY\nAETable END\n",
            db.display()
        );
        let path = dir.join("dcmqrscp.cfg");
        std::fs::write(&path, cfg).expect("config");
        // Association profiles, as an administrator sets dcmqrscp up to serve
        // compressed images: storage contexts accept the compressed syntaxes, and
        // C-GET's storage sub-operations may take the SCP role.
        let assoc = dir.join("dcmqrscp-assoc.cfg");
        std::fs::write(&assoc, ASSOCIATION_PROFILES).expect("association config");
        let process = KillOnDrop(
            Command::new(exe)
                .args(["-xf", assoc.to_str().expect("utf8"), "QRIn", "QROut"])
                .args(["-c", path.to_str().expect("utf8")])
                .env("TCP_NODELAY", "1")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start dcmqrscp"),
        );
        wait_port(port, "dcmqrscp");
        Dcmqrscp {
            port,
            _process: process,
        }
    }
}

/// dcmqrscp's association profiles (DCMTK's association configuration format).
const ASSOCIATION_PROFILES: &str = r"[[TransferSyntaxes]]
[Uncompressed]
TransferSyntax1 = LocalEndianExplicit
TransferSyntax2 = LittleEndianImplicit
[Any]
TransferSyntax1 = LocalEndianExplicit
TransferSyntax2 = LittleEndianImplicit
TransferSyntax3 = JPEG2000LosslessOnly
TransferSyntax4 = JPEG2000
TransferSyntax5 = JPEGLSLossless
TransferSyntax6 = JPEGLSLossy
TransferSyntax7 = JPEGLossless:Non-hierarchical-1stOrderPrediction
TransferSyntax8 = JPEGBaseline
TransferSyntax9 = RLELossless
[[PresentationContexts]]
[In]
PresentationContext1 = VerificationSOPClass\Uncompressed
PresentationContext2 = FINDStudyRootQueryRetrieveInformationModel\Uncompressed
PresentationContext3 = MOVEStudyRootQueryRetrieveInformationModel\Uncompressed
PresentationContext4 = GETStudyRootQueryRetrieveInformationModel\Uncompressed
PresentationContext5 = FINDPatientRootQueryRetrieveInformationModel\Uncompressed
PresentationContext6 = MOVEPatientRootQueryRetrieveInformationModel\Uncompressed
PresentationContext7 = GETPatientRootQueryRetrieveInformationModel\Uncompressed
PresentationContext8 = CTImageStorage\Any
PresentationContext9 = MRImageStorage\Any
PresentationContext10 = ComputedRadiographyImageStorage\Any
[Out]
PresentationContext1 = CTImageStorage\Uncompressed
PresentationContext2 = MRImageStorage\Uncompressed
PresentationContext3 = ComputedRadiographyImageStorage\Uncompressed
[[SCPSCURoleSelection]]
[GetRoles]
Role1 = CTImageStorage\BOTH
Role2 = MRImageStorage\BOTH
Role3 = ComputedRadiographyImageStorage\BOTH
[[Profiles]]
[QRIn]
PresentationContexts = In
SCPSCURoleSelection = GetRoles
[QROut]
PresentationContexts = Out
";
