//! Configuration: a TOML file in the platform config folder
//! (`$LIGHTBOX_CONFIG`, else `$XDG_CONFIG_HOME/lightbox/config.toml`, else
//! `~/.config/lightbox/config.toml`). Every key is optional; `lightbox config show`
//! prints the effective values and where each came from.
//!
//! ```toml
//! ae_title = "LIGHTBOX"        # our AE title
//! scp_port = 11112             # Storage SCP port
//! allowed_aes = ["CT1", "PACS"] # calling AE titles the SCP accepts (empty: any)
//! cache_root = "/data/lightbox" # local cache folder
//! cache_max_mb = 50000         # eviction cap
//! durability = "batched"       # when the SCP acknowledges: "batched" or "strict"
//! scp_max_associations = 64    # connections the SCP serves at once
//! scp_artim_timeout_s = 30     # a connection must ask for an association within this
//! scp_idle_timeout_s = 60      # an association silent this long is closed
//! slices_per_notch = 1         # viewer: slices one mouse-wheel notch moves (0.25–20)
//! tls_certificate = "lightbox.pem"  # our certificate chain (PEM): the TLS SCP's, and
//! tls_private_key = "lightbox.key"  #   sent to nodes that ask for one (mutual TLS)
//! tls_port = 2762              # the Storage SCP's TLS listener, beside scp_port
//! tls_client_ca = "peers.pem"  # CAs whose client certificates the TLS SCP accepts
//! tls_allow_anonymous = false  # accept TLS peers without a client certificate
//!
//! [[nodes]]                    # PACS nodes for echo / find / retrieve
//! name = "pacs"
//! ae_title = "ORTHANC"
//! host = "10.0.0.5"
//! port = 4242
//! retrieve = "move"            # "move" (default) or "get"
//! get_fallback = true          # try C-GET when C-MOVE is refused (default true)
//! parallel = 4                 # associations used to retrieve series in parallel
//! max_pdu = 65536
//! connect_timeout_s = 5
//! dimse_timeout_s = 30         # longest wait for any answer
//! tls = false                  # DICOM over TLS (1.2 and 1.3 only, certificate checked)
//! tls_ca = "pacs-ca.pem"       # CAs to trust for this node (default: none), or its
//!                              #   own certificate, pinned
//! tls_server_name = "pacs.example.org" # the name its certificate must carry (default: host)
//! ```
//!
//! Relative paths are taken from the configuration file's folder.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The file's contents; absent keys take defaults.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub ae_title: Option<String>,
    pub scp_port: Option<u16>,
    pub allowed_aes: Option<Vec<String>>,
    pub cache_root: Option<PathBuf>,
    pub cache_max_mb: Option<u64>,
    pub durability: Option<crate::store::Durability>,
    pub slices_per_notch: Option<f32>,
    pub scp_max_associations: Option<usize>,
    pub scp_artim_timeout_s: Option<u64>,
    pub scp_idle_timeout_s: Option<u64>,
    pub tls_certificate: Option<PathBuf>,
    pub tls_private_key: Option<PathBuf>,
    pub tls_client_ca: Option<PathBuf>,
    pub tls_allow_anonymous: Option<bool>,
    pub tls_port: Option<u16>,
    #[serde(default)]
    pub nodes: Vec<Node>,
}

/// How a node is retrieved from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RetrieveMethod {
    #[default]
    Move,
    Get,
}

impl std::str::FromStr for RetrieveMethod {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "move" | "c-move" => Ok(RetrieveMethod::Move),
            "get" | "c-get" => Ok(RetrieveMethod::Get),
            _ => Err(format!("retrieve method must be move or get, not {s:?}")),
        }
    }
}

/// How a node is spoken to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// DIMSE over TCP (C-FIND, C-MOVE, C-GET, C-STORE), optionally over TLS.
    #[default]
    Dimse,
    /// DICOMweb over HTTP(S): QIDO-RS, WADO-RS, STOW-RS.
    Dicomweb,
}

/// A remote DICOM node (a PACS).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Node {
    pub name: String,
    #[serde(default)]
    pub protocol: Protocol,
    /// DICOMweb: the service's base URL (e.g. `https://pacs/dicom-web`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// DICOMweb: a fixed OAuth2 bearer token.
    #[serde(default, skip_serializing)]
    pub bearer_token: Option<String>,
    /// DICOMweb: a command (program and arguments) printing a fresh access token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_command: Option<Vec<String>>,
    /// DICOMweb: HTTP basic authentication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing)]
    pub password: Option<String>,
    /// DIMSE: the node's AE title (DICOMweb nodes: unused).
    #[serde(default)]
    pub ae_title: String,
    /// DIMSE: host (DICOMweb: taken from `url`).
    #[serde(default)]
    pub host: String,
    #[serde(default)]
    pub port: u16,
    #[serde(default)]
    pub retrieve: RetrieveMethod,
    #[serde(default = "yes")]
    pub get_fallback: bool,
    #[serde(default = "default_parallel")]
    pub parallel: usize,
    #[serde(default = "default_max_pdu")]
    pub max_pdu: u32,
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout_s: u64,
    #[serde(default = "default_dimse_timeout")]
    pub dimse_timeout_s: u64,
    #[serde(default)]
    pub tls: bool,
    /// PEM file of the certificates to trust for this node: CA certificates, or the
    /// node's own (self-signed) certificate, pinned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_ca: Option<PathBuf>,
    /// The name the node's certificate must carry (default: `host`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_server_name: Option<String>,
    /// When a study is opened in the viewer, look on this node for the patient's
    /// priors and retrieve the newest ones not cached yet.
    #[serde(default)]
    pub fetch_priors: bool,
}

fn yes() -> bool {
    true
}
fn default_parallel() -> usize {
    4
}
fn default_max_pdu() -> u32 {
    64 * 1024
}
fn default_connect_timeout() -> u64 {
    5
}
fn default_dimse_timeout() -> u64 {
    30
}

impl Node {
    /// An ad-hoc node typed on the command line.
    pub fn ad_hoc(host: &str, port: u16, ae_title: &str) -> Node {
        Node {
            name: format!("{ae_title}@{host}:{port}"),
            protocol: Protocol::Dimse,
            url: None,
            bearer_token: None,
            token_command: None,
            username: None,
            password: None,
            ae_title: ae_title.to_string(),
            host: host.to_string(),
            port,
            retrieve: RetrieveMethod::Move,
            get_fallback: true,
            parallel: default_parallel(),
            max_pdu: default_max_pdu(),
            connect_timeout_s: default_connect_timeout(),
            dimse_timeout_s: default_dimse_timeout(),
            tls: false,
            tls_ca: None,
            tls_server_name: None,
            fetch_priors: false,
        }
    }
}

/// Where a value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Origin {
    Default,
    File,
    Environment,
    CommandLine,
}

/// The effective configuration.
#[derive(Debug, Clone, Serialize)]
pub struct Config {
    /// The file read, if it exists.
    pub file: Option<PathBuf>,
    pub ae_title: (String, Origin),
    pub scp_port: (u16, Origin),
    pub allowed_aes: (Vec<String>, Origin),
    pub cache_root: (PathBuf, Origin),
    pub cache_max_mb: (Option<u64>, Origin),
    pub durability: (crate::store::Durability, Origin),
    /// How many slices one wheel notch moves in the viewer.
    pub slices_per_notch: (f32, Origin),
    /// Connections the Storage SCP serves at once.
    pub scp_max_associations: (usize, Origin),
    /// ARTIM: seconds a connection has to send its A-ASSOCIATE-RQ.
    pub scp_artim_timeout_s: (u64, Origin),
    /// Seconds an established association may stay silent.
    pub scp_idle_timeout_s: (u64, Origin),
    /// Our TLS identity and what the TLS SCP accepts.
    pub tls: (TlsIdentity, Origin),
    /// The Storage SCP's TLS port (none: no TLS listener).
    pub tls_port: (Option<u16>, Origin),
    pub nodes: Vec<Node>,
}

/// Lightbox's own side of DICOM over TLS (PEM files, absolute paths).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TlsIdentity {
    /// Our certificate chain: the TLS SCP's, and our client certificate.
    pub certificate: Option<PathBuf>,
    pub private_key: Option<PathBuf>,
    /// CAs whose client certificates the TLS SCP accepts.
    pub client_ca: Option<PathBuf>,
    /// Accept TLS peers that present no client certificate.
    pub allow_anonymous: bool,
}

impl Config {
    /// A configured node by name (case-insensitive).
    pub fn node(&self, name: &str) -> Option<&Node> {
        self.nodes
            .iter()
            .find(|n| n.name.eq_ignore_ascii_case(name))
    }
}

/// The config file's path.
pub fn default_path() -> PathBuf {
    if let Some(p) = std::env::var_os("LIGHTBOX_CONFIG") {
        return PathBuf::from(p);
    }
    std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .unwrap_or_else(|| PathBuf::from("."))
        .join("lightbox")
        .join("config.toml")
}

fn pick<T>(file: Option<T>, default: T) -> (T, Origin) {
    match file {
        Some(v) => (v, Origin::File),
        None => (default, Origin::Default),
    }
}

/// AE titles: 1–16 characters of the default repertoire, no backslash, not all spaces.
pub fn valid_ae_title(ae: &str) -> bool {
    !ae.trim().is_empty()
        && ae.len() <= 16
        && ae
            .chars()
            .all(|c| c.is_ascii() && !c.is_ascii_control() && c != '\\')
}

/// Load the configuration from `path` (missing file: all defaults). A file that
/// exists but cannot be read or parsed is an error naming the file and the key.
pub fn load(path: &Path) -> Result<Config> {
    match std::fs::read_to_string(path) {
        Ok(text) => from_text(&text, path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            resolve(FileConfig::default(), None, path)
        }
        Err(source) => Err(Error::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// The configuration from a file's text (`path` names it in errors).
pub fn from_text(text: &str, path: &Path) -> Result<Config> {
    let fc: FileConfig = toml::from_str(text).map_err(|e| Error::Invalid {
        path: path.to_path_buf(),
        attribute: "configuration",
        reason: e.to_string().trim().replace('\n', " "),
    })?;
    resolve(fc, Some(path.to_path_buf()), path)
}

/// Validate the file's values and fill in the defaults.
fn resolve(mut fc: FileConfig, file: Option<PathBuf>, path: &Path) -> Result<Config> {
    let invalid = |attribute: &'static str, reason: String| Error::Invalid {
        path: path.to_path_buf(),
        attribute,
        reason,
    };
    let ae_title = pick(fc.ae_title, "LIGHTBOX".to_string());
    if !valid_ae_title(&ae_title.0) {
        return Err(invalid(
            "ae_title",
            format!("{:?} is not a valid AE title", ae_title.0),
        ));
    }
    let allowed = pick(fc.allowed_aes, Vec::new());
    if let Some(bad) = allowed.0.iter().find(|a| !valid_ae_title(a)) {
        return Err(invalid(
            "allowed_aes",
            format!("{bad:?} is not a valid AE title"),
        ));
    }
    let scp_port = pick(fc.scp_port, 11112);
    if scp_port.0 == 0 {
        return Err(invalid("scp_port", "0 is not a port".into()));
    }
    let cache_root = match (std::env::var_os("LIGHTBOX_CACHE"), fc.cache_root) {
        (Some(p), _) => (PathBuf::from(p), Origin::Environment),
        (None, Some(p)) => (p, Origin::File),
        (None, None) => (crate::store::default_root(), Origin::Default),
    };
    // Relative paths are the configuration file's neighbours.
    let base = path.parent().unwrap_or(Path::new("."));
    let near = |p: PathBuf| if p.is_relative() { base.join(p) } else { p };
    for n in &mut fc.nodes {
        n.tls_ca = n.tls_ca.take().map(near);
    }
    let tls = TlsIdentity {
        certificate: fc.tls_certificate.take().map(near),
        private_key: fc.tls_private_key.take().map(near),
        client_ca: fc.tls_client_ca.take().map(near),
        allow_anonymous: fc.tls_allow_anonymous.unwrap_or(false),
    };
    if tls.certificate.is_some() != tls.private_key.is_some() {
        return Err(invalid(
            "tls_certificate",
            "tls_certificate and tls_private_key go together".into(),
        ));
    }
    if let Some(p) = fc.tls_port {
        if p == 0 || p == scp_port.0 {
            return Err(invalid(
                "tls_port",
                format!("{p} cannot be the TLS port (it must be set and differ from scp_port)"),
            ));
        }
        if tls.certificate.is_none() {
            return Err(invalid(
                "tls_port",
                "a TLS listener needs tls_certificate and tls_private_key".into(),
            ));
        }
        if tls.client_ca.is_none() && !tls.allow_anonymous {
            return Err(invalid(
                "tls_client_ca",
                "the TLS listener needs tls_client_ca (the CAs of the peers it accepts), \
                 or tls_allow_anonymous = true"
                    .into(),
            ));
        }
    }
    let tls_origin = if fc_has_tls(&tls) {
        Origin::File
    } else {
        Origin::Default
    };
    for n in &mut fc.nodes {
        if n.protocol != Protocol::Dicomweb {
            continue;
        }
        let url = n.url.clone().unwrap_or_default();
        let Some(rest) = url
            .strip_prefix("http://")
            .or_else(|| url.strip_prefix("https://"))
        else {
            return Err(invalid(
                "nodes",
                format!(
                    "node {:?}: a DICOMweb node needs url = \"http(s)://host[:port]/path\"",
                    n.name
                ),
            ));
        };
        // The host (for messages and the audit trail), and TLS from the scheme.
        let authority = rest.split('/').next().unwrap_or("");
        let authority = authority.rsplit('@').next().unwrap_or(authority);
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => {
                (h.to_string(), p.parse::<u16>().unwrap_or(0))
            }
            _ => (authority.to_string(), 0),
        };
        let tls = url.starts_with("https://");
        n.host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        n.port = if port != 0 {
            port
        } else if tls {
            443
        } else {
            80
        };
        n.tls = tls;
        if n.ae_title.is_empty() {
            n.ae_title = "DICOMWEB".into();
        }
        if n.bearer_token.is_some() as u8
            + n.token_command.is_some() as u8
            + n.username.is_some() as u8
            > 1
        {
            return Err(invalid(
                "nodes",
                format!(
                    "node {:?}: give one of bearer_token, token_command, username/password",
                    n.name
                ),
            ));
        }
    }
    for n in &fc.nodes {
        if !valid_ae_title(&n.ae_title) {
            return Err(invalid(
                "nodes",
                format!(
                    "node {:?}: {:?} is not a valid AE title",
                    n.name, n.ae_title
                ),
            ));
        }
        if n.port == 0 || n.host.is_empty() || n.parallel == 0 {
            return Err(invalid(
                "nodes",
                format!("node {:?}: host, port and parallel must be set", n.name),
            ));
        }
        if fc
            .nodes
            .iter()
            .filter(|m| m.name.eq_ignore_ascii_case(&n.name))
            .count()
            > 1
        {
            return Err(invalid(
                "nodes",
                format!("node {:?} is defined twice", n.name),
            ));
        }
    }
    if let Some(v) = fc.slices_per_notch
        && !(0.25..=20.0).contains(&v)
    {
        return Err(invalid(
            "slices_per_notch",
            format!("must be between 0.25 and 20, not {v}"),
        ));
    }
    if let Some(v) = fc.scp_max_associations
        && !(1..=4096).contains(&v)
    {
        return Err(invalid(
            "scp_max_associations",
            format!("must be between 1 and 4096, not {v}"),
        ));
    }
    for (key, v) in [
        ("scp_artim_timeout_s", fc.scp_artim_timeout_s),
        ("scp_idle_timeout_s", fc.scp_idle_timeout_s),
    ] {
        if let Some(v) = v
            && !(1..=3600).contains(&v)
        {
            return Err(invalid(
                key,
                format!("must be between 1 and 3600 s, not {v}"),
            ));
        }
    }
    Ok(Config {
        file,
        slices_per_notch: pick(fc.slices_per_notch, 1.0),
        scp_max_associations: pick(
            fc.scp_max_associations,
            crate::net::scp::DEFAULT_MAX_ASSOCIATIONS,
        ),
        scp_artim_timeout_s: pick(fc.scp_artim_timeout_s, crate::net::scp::DEFAULT_ARTIM_S),
        scp_idle_timeout_s: pick(fc.scp_idle_timeout_s, crate::net::scp::DEFAULT_IDLE_S),
        durability: pick(fc.durability, crate::store::Durability::default()),
        tls: (tls, tls_origin),
        tls_port: match fc.tls_port {
            Some(p) => (Some(p), Origin::File),
            None => (None, Origin::Default),
        },
        nodes: fc.nodes,
        ae_title,
        scp_port,
        allowed_aes: allowed,
        cache_root,
        cache_max_mb: match fc.cache_max_mb {
            Some(v) => (Some(v), Origin::File),
            None => (None, Origin::Default),
        },
    })
}

fn fc_has_tls(t: &TlsIdentity) -> bool {
    t.certificate.is_some() || t.client_ca.is_some() || t.allow_anonymous
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_come_from_the_file_or_defaults() {
        let dir = std::env::temp_dir().join(format!("lightbox-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let p = dir.join("config.toml");
        std::fs::write(
            &p,
            "ae_title = \"READING1\"\nscp_port = 4242\nallowed_aes = [\"CT1\"]\n",
        )
        .expect("write");
        let c = load(&p).expect("load");
        assert_eq!(c.ae_title, ("READING1".to_string(), Origin::File));
        assert_eq!(c.scp_port, (4242, Origin::File));
        assert_eq!(c.allowed_aes.0, vec!["CT1".to_string()]);
        assert_eq!(c.cache_max_mb, (None, Origin::Default));
        std::fs::write(&p, "ae_title = \"WAY_TOO_LONG_AE_TITLE\"\n").expect("write");
        let e = load(&p).expect_err("invalid AE").to_string();
        assert!(e.contains("ae_title") && e.contains("config.toml"), "{e}");
        std::fs::write(&p, "scp_prot = 1\n").expect("write");
        let e = load(&p).expect_err("unknown key").to_string();
        assert!(e.contains("scp_prot"), "{e}");
        let missing = load(&dir.join("absent.toml")).expect("defaults");
        assert!(missing.file.is_none());
        assert_eq!(missing.scp_port, (11112, Origin::Default));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
