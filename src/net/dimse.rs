//! A small DIMSE layer over `dicom-ul` (which has none): command sets built,
//! encoded and parsed; messages split into P-DATA PDUs within the peer's maximum
//! PDU length; incoming PDUs turned into events (a whole command set, or a chunk of
//! a data set as it arrives, so large objects stream to disk).

use std::collections::VecDeque;
use std::net::TcpStream;

use dicom_core::{DataElement, PrimitiveValue, Tag, VR};
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;
use dicom_ul::Pdu;
use dicom_ul::association::{Association, SyncAssociation};
use dicom_ul::pdu::PresentationContextNegotiated;
use dicom_ul::pdu::{AbortRQSource, PDataValue, PDataValueType};
use dicom_ul::{ClientAssociation, ServerAssociation};

use super::{IMPLICIT_LE, failure};
use crate::error::{NetFailure, Result};

/// Command sets are a few hundred bytes; anything past this is hostile.
pub const MAX_COMMAND_BYTES: usize = 64 * 1024;

/// DIMSE command fields (PS3.7 E.1).
pub mod field {
    pub const C_STORE_RQ: u16 = 0x0001;
    pub const C_STORE_RSP: u16 = 0x8001;
    pub const C_GET_RQ: u16 = 0x0010;
    pub const C_GET_RSP: u16 = 0x8010;
    pub const C_FIND_RQ: u16 = 0x0020;
    pub const C_FIND_RSP: u16 = 0x8020;
    pub const C_MOVE_RQ: u16 = 0x0021;
    pub const C_MOVE_RSP: u16 = 0x8021;
    pub const C_ECHO_RQ: u16 = 0x0030;
    pub const C_ECHO_RSP: u16 = 0x8030;
    pub const C_CANCEL_RQ: u16 = 0x0FFF;
}

/// No data set follows the command.
pub const NO_DATA_SET: u16 = 0x0101;
/// A data set follows the command (any value but 0x0101).
pub const HAS_DATA_SET: u16 = 0x0000;

/// An association either side of which we are: the SCP's or the SCU's.
pub trait Link {
    /// Who is at the other end, for messages: a node's label, or the calling AE
    /// title of an association we accepted.
    fn peer(&self) -> &str;
    fn send_pdu(&mut self, pdu: &Pdu) -> Result<()>;
    fn receive_pdu(&mut self) -> Result<Pdu>;
    /// Largest PDU the peer accepts (0: unlimited).
    fn peer_max_pdu(&self) -> u32;
    /// The transfer syntax negotiated for a presentation context.
    fn context_syntax(&self, pc_id: u8) -> Option<String>;
    /// Send A-ABORT and close (errors ignored: the peer may already be gone).
    fn abort_now(&mut self) {
        let _ = self.send_pdu(&Pdu::AbortRQ {
            source: AbortRQSource::ServiceUser,
        });
    }
}

/// An established association, either side, plain or over TLS.
#[derive(Debug)]
pub enum Assoc {
    Client(ClientAssociation<TcpStream>),
    ClientTls(ClientAssociation<dicom_ul::association::client::TlsStream>),
    Server(ServerAssociation<TcpStream>),
    ServerTls(ServerAssociation<dicom_ul::association::server::TlsStream>),
}

macro_rules! each {
    ($self:expr, $a:ident => $e:expr) => {
        match $self {
            Assoc::Client($a) => $e,
            Assoc::ClientTls($a) => $e,
            Assoc::Server($a) => $e,
            Assoc::ServerTls($a) => $e,
        }
    };
}

impl Assoc {
    /// The TCP socket under it (TLS or not).
    fn socket(&mut self) -> &TcpStream {
        match self {
            Assoc::Client(a) => a.inner_stream(),
            Assoc::ClientTls(a) => &a.inner_stream().sock,
            Assoc::Server(a) => a.inner_stream(),
            Assoc::ServerTls(a) => &a.inner_stream().sock,
        }
    }
    fn send(&mut self, pdu: &Pdu) -> std::result::Result<(), dicom_ul::association::Error> {
        each!(self, a => SyncAssociation::send(a, pdu))
    }
    fn peer_max_pdu_length(&self) -> u32 {
        each!(self, a => a.peer_max_pdu_length())
    }
    pub fn presentation_contexts(&self) -> &[PresentationContextNegotiated] {
        each!(self, a => a.presentation_contexts())
    }
    /// Over TLS.
    pub fn is_tls(&self) -> bool {
        matches!(self, Assoc::ClientTls(_) | Assoc::ServerTls(_))
    }
}

/// Reads the association's stream (decrypting, over TLS), re-arming TCP_QUICKACK
/// on its socket after every read (Linux), so that the peer never waits for our
/// delayed ACK.
///
/// A sender with Nagle's algorithm on (Debian's Orthanc and DCMTK, unless the
/// environment says `TCP_NODELAY=1`) holds back a segment shorter than its MSS
/// — the tail of every PDU — until the data before it is acknowledged, and
/// Linux delays that ACK by up to 40 ms when it thinks the connection
/// interactive. Quick-ACK mode lapses on its own, hence re-armed each time.
/// Measured by `benches/compare_net.py --only nagle`: C-MOVE from a Nagle-on
/// Orthanc or dcmqrscp 1.00–1.05× the TCP_NODELAY time (2.0–3.9× without this).
#[derive(Debug)]
pub struct Wire {
    assoc: Assoc,
    /// The socket, for timeouts and quick ACKs.
    sock: TcpStream,
}

impl std::io::Read for Wire {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = match &mut self.assoc {
            Assoc::Client(a) => a.inner_stream().read(buf),
            Assoc::ClientTls(a) => a.inner_stream().read(buf),
            Assoc::Server(a) => a.inner_stream().read(buf),
            Assoc::ServerTls(a) => a.inner_stream().read(buf),
        }?;
        #[cfg(target_os = "linux")]
        {
            // Best effort: a socket that refuses it reads on as before.
            let _ = rustix::net::sockopt::set_tcp_quickack(&self.sock, true);
        }
        Ok(n)
    }
}

/// An established association with our own PDU reader on its stream.
///
/// dicom-ul's `receive` re-parses its whole buffer after every 8 KiB read and copies
/// each PDU's data (a fifth of the Storage SCP's time in a profile); reading PDUs
/// here (header, then each PDV straight into its own buffer) costs one copy from
/// the kernel. Sending still goes through dicom-ul. Nothing is buffered by
/// dicom-ul past association establishment, since the peer waits for the A-ASSOCIATE
/// answer before it sends anything (over TLS, what rustls holds is read through
/// the same stream).
pub struct Conn {
    /// Who is at the other end (see [`Link::peer`]).
    peer: String,
    reader: std::io::BufReader<Wire>,
    /// Largest PDU accepted from the peer (what we advertised, with slack for
    /// peers that count the header in).
    max_in: usize,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn")
            .field("peer", &self.peer)
            .field("max_in", &self.max_in)
            .field("tls", &self.reader.get_ref().assoc.is_tls())
            .finish()
    }
}

impl Conn {
    /// Wrap an established association (either side) with `peer` at the other
    /// end, with TCP_NODELAY.
    pub fn new(mut assoc: Assoc, max_pdu: u32, peer: impl Into<String>) -> Result<Self> {
        let peer = peer.into();
        let local = |e: std::io::Error| failure(peer.as_str(), NetFailure::Local(e.to_string()));
        let sock = assoc.socket().try_clone().map_err(local)?;
        sock.set_nodelay(true).map_err(local)?;
        Ok(Conn {
            peer,
            reader: std::io::BufReader::with_capacity(128 * 1024, Wire { assoc, sock }),
            max_in: max_pdu as usize + 64,
        })
    }

    /// How long a read may wait for the peer (the socket's SO_RCVTIMEO).
    pub fn set_read_timeout(&self, timeout: std::time::Duration) -> std::io::Result<()> {
        self.reader.get_ref().sock.set_read_timeout(Some(timeout))
    }

    /// The association's negotiated presentation contexts.
    pub fn presentation_contexts(&self) -> &[PresentationContextNegotiated] {
        self.reader.get_ref().assoc.presentation_contexts()
    }

    /// The association runs over TLS.
    pub fn is_tls(&self) -> bool {
        self.reader.get_ref().assoc.is_tls()
    }

    /// A-RELEASE (an association we opened); errors are ignored, the socket closes.
    pub fn release(self) {
        match self.reader.into_inner().assoc {
            Assoc::Client(a) => drop(a.release()),
            Assoc::ClientTls(a) => drop(a.release()),
            Assoc::Server(_) | Assoc::ServerTls(_) => {}
        }
    }
}

/// Read one PDU (PS3.8 9.3): P-DATA-TF parsed into its PDVs, release and abort
/// recognised, anything else returned as unknown. PDUs over `max` bytes and
/// malformed PDV items are errors (the caller aborts).
pub fn read_pdu(r: &mut impl std::io::Read, max: usize) -> std::result::Result<Pdu, NetFailure> {
    let mut h = [0u8; 6];
    r.read_exact(&mut h).map_err(|e| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => {
            NetFailure::Aborted("the peer closed the connection".into())
        }
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
            NetFailure::Timeout("waiting for the peer".into())
        }
        _ => NetFailure::Aborted(format!("reading from the peer: {e}")),
    })?;
    let len = u32::from_be_bytes([h[2], h[3], h[4], h[5]]) as usize;
    if len > max {
        return Err(NetFailure::Operation(format!(
            "PDU of {len} bytes exceeds the {max}-byte limit"
        )));
    }
    let read = |r: &mut dyn std::io::Read, buf: &mut [u8]| {
        r.read_exact(buf)
            .map_err(|e| NetFailure::Aborted(format!("PDU cut short: {e}")))
    };
    match h[0] {
        0x04 => {
            let mut remaining = len;
            let mut data = Vec::new();
            while remaining > 0 {
                let mut ih = [0u8; 6];
                if remaining < 6 {
                    return Err(NetFailure::Operation(
                        "malformed P-DATA-TF: truncated PDV item".into(),
                    ));
                }
                read(r, &mut ih)?;
                let item = u32::from_be_bytes([ih[0], ih[1], ih[2], ih[3]]) as usize;
                if item < 2 || item + 4 > remaining {
                    return Err(NetFailure::Operation(format!(
                        "malformed P-DATA-TF: PDV item of {item} bytes in {remaining}"
                    )));
                }
                let mut bytes = vec![0u8; item - 2];
                read(r, &mut bytes)?;
                remaining -= item + 4;
                data.push(PDataValue {
                    presentation_context_id: ih[4],
                    value_type: if ih[5] & 1 != 0 {
                        PDataValueType::Command
                    } else {
                        PDataValueType::Data
                    },
                    is_last: ih[5] & 2 != 0,
                    data: bytes,
                });
            }
            Ok(Pdu::PData { data })
        }
        ty => {
            let mut body = vec![0u8; len];
            read(r, &mut body)?;
            Ok(match ty {
                0x05 => Pdu::ReleaseRQ,
                0x06 => Pdu::ReleaseRP,
                0x07 => Pdu::AbortRQ {
                    source: AbortRQSource::ServiceUser,
                },
                _ => Pdu::Unknown {
                    pdu_type: ty,
                    data: body,
                },
            })
        }
    }
}

impl Link for Conn {
    fn peer(&self) -> &str {
        &self.peer
    }
    fn send_pdu(&mut self, pdu: &Pdu) -> Result<()> {
        self.reader
            .get_mut()
            .assoc
            .send(pdu)
            .map_err(|e| failure(self.peer.as_str(), NetFailure::Aborted(e.to_string())))
    }
    fn receive_pdu(&mut self) -> Result<Pdu> {
        read_pdu(&mut self.reader, self.max_in).map_err(|k| failure(self.peer.as_str(), k))
    }
    fn peer_max_pdu(&self) -> u32 {
        self.reader.get_ref().assoc.peer_max_pdu_length()
    }
    fn context_syntax(&self, pc_id: u8) -> Option<String> {
        self.presentation_contexts()
            .iter()
            .find(|c| c.id == pc_id)
            .map(|c| c.transfer_syntax.clone())
    }
}

/// What arrived on an association.
#[derive(Debug)]
pub enum Event {
    /// A complete command set.
    Command {
        pc_id: u8,
        command: InMemDicomObject,
    },
    /// Part of a data set; `last` ends it.
    Data {
        pc_id: u8,
        bytes: Vec<u8>,
        last: bool,
    },
    ReleaseRQ,
    ReleaseRP,
    Abort,
    /// Any other PDU (an error at this point of the protocol).
    Other(Box<Pdu>),
}

/// Turns PDUs into [`Event`]s.
#[derive(Debug, Default)]
pub struct Reader {
    queue: VecDeque<PDataValue>,
    command: Vec<u8>,
}

impl Reader {
    /// The next event (blocking on the association's read timeout).
    pub fn next(&mut self, link: &mut dyn Link) -> Result<Event> {
        loop {
            while let Some(v) = self.queue.pop_front() {
                match v.value_type {
                    PDataValueType::Data => {
                        return Ok(Event::Data {
                            pc_id: v.presentation_context_id,
                            bytes: v.data,
                            last: v.is_last,
                        });
                    }
                    PDataValueType::Command => {
                        if self.command.len() + v.data.len() > MAX_COMMAND_BYTES {
                            link.abort_now();
                            return Err(failure(
                                link.peer(),
                                NetFailure::Operation(format!(
                                    "command set larger than {MAX_COMMAND_BYTES} bytes; \
                                     association aborted"
                                )),
                            ));
                        }
                        self.command.extend_from_slice(&v.data);
                        if v.is_last {
                            let command = parse_command(&self.command)
                                .map_err(|k| failure(link.peer(), k))?;
                            self.command.clear();
                            return Ok(Event::Command {
                                pc_id: v.presentation_context_id,
                                command,
                            });
                        }
                    }
                }
            }
            match link.receive_pdu()? {
                Pdu::PData { data } => self.queue.extend(data),
                Pdu::ReleaseRQ => return Ok(Event::ReleaseRQ),
                Pdu::ReleaseRP => return Ok(Event::ReleaseRP),
                Pdu::AbortRQ { .. } => return Ok(Event::Abort),
                other => return Ok(Event::Other(Box::new(other))),
            }
        }
    }

    /// Read a whole (small) data set: C-FIND identifiers and the like, at most
    /// `limit` bytes.
    pub fn read_dataset(&mut self, link: &mut dyn Link, limit: usize) -> Result<(u8, Vec<u8>)> {
        let mut out = Vec::new();
        loop {
            match self.next(link)? {
                Event::Data { pc_id, bytes, last } => {
                    if out.len() + bytes.len() > limit {
                        link.abort_now();
                        return Err(failure(
                            link.peer(),
                            NetFailure::Operation(format!(
                                "data set larger than {limit} bytes; association aborted"
                            )),
                        ));
                    }
                    out.extend_from_slice(&bytes);
                    if last {
                        return Ok((pc_id, out));
                    }
                }
                Event::Abort => {
                    return Err(failure(
                        link.peer(),
                        NetFailure::Aborted("the peer aborted the association".into()),
                    ));
                }
                other => {
                    return Err(failure(
                        link.peer(),
                        NetFailure::Operation(format!(
                            "expected a data set, received {}",
                            describe(&other)
                        )),
                    ));
                }
            }
        }
    }
}

/// One line naming an event, for errors.
pub fn describe(e: &Event) -> String {
    match e {
        Event::Command { command, .. } => format!(
            "a command (field 0x{:04X})",
            int(command, tags::COMMAND_FIELD).unwrap_or(0)
        ),
        Event::Data { .. } => "a data set".into(),
        Event::ReleaseRQ => "A-RELEASE-RQ".into(),
        Event::ReleaseRP => "A-RELEASE-RP".into(),
        Event::Abort => "A-ABORT".into(),
        Event::Other(p) => format!("an unexpected PDU ({})", pdu_name(p)),
    }
}

fn pdu_name(p: &Pdu) -> &'static str {
    match p {
        Pdu::Unknown { .. } => "unknown type",
        Pdu::AssociationRQ(_) => "A-ASSOCIATE-RQ",
        Pdu::AssociationAC(_) => "A-ASSOCIATE-AC",
        Pdu::AssociationRJ(_) => "A-ASSOCIATE-RJ",
        Pdu::PData { .. } => "P-DATA",
        Pdu::ReleaseRQ => "A-RELEASE-RQ",
        Pdu::ReleaseRP => "A-RELEASE-RP",
        Pdu::AbortRQ { .. } => "A-ABORT",
    }
}

/// Parse a command set (always implicit VR little endian).
pub fn parse_command(bytes: &[u8]) -> std::result::Result<InMemDicomObject, NetFailure> {
    parse_dataset(bytes, IMPLICIT_LE)
        .map_err(|e| NetFailure::Operation(format!("bad command set: {e}")))
}

/// Parse a data set received on a context with transfer syntax `ts`. The codec
/// functions here know no peer; their callers name it.
pub fn parse_dataset(bytes: &[u8], ts: &str) -> std::result::Result<InMemDicomObject, NetFailure> {
    use dicom_encoding::TransferSyntaxIndex;
    let syntax = dicom_transfer_syntax_registry::TransferSyntaxRegistry
        .get(ts)
        .ok_or_else(|| NetFailure::Local(format!("transfer syntax {ts} not known")))?;
    if let Err(crate::dicom::guard::Problem::Bad(why)) =
        crate::dicom::guard::check(bytes, 0, ts, false, bytes.len())
    {
        return Err(NetFailure::Operation(why));
    }
    InMemDicomObject::read_dataset_with_ts(bytes, syntax)
        .map_err(|e| NetFailure::Operation(e.to_string()))
}

/// Encode a data set in transfer syntax `ts`.
pub fn encode_dataset(
    obj: &InMemDicomObject,
    ts: &str,
) -> std::result::Result<Vec<u8>, NetFailure> {
    use dicom_encoding::TransferSyntaxIndex;
    let syntax = dicom_transfer_syntax_registry::TransferSyntaxRegistry
        .get(ts)
        .ok_or_else(|| NetFailure::Local(format!("transfer syntax {ts} not known")))?;
    let mut out = Vec::new();
    obj.write_dataset_with_ts(&mut out, syntax)
        .map_err(|e| NetFailure::Local(e.to_string()))?;
    Ok(out)
}

/// Encode a command set in implicit VR little endian with its group length.
pub fn encode_command(cmd: &InMemDicomObject) -> std::result::Result<Vec<u8>, NetFailure> {
    let body = encode_dataset(cmd, IMPLICIT_LE)?;
    let mut out = Vec::with_capacity(body.len() + 12);
    out.extend_from_slice(&[0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00]);
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&body);
    Ok(out)
}

/// Send a command and, if given, its data set, split to fit the peer's PDUs.
pub fn send_message(
    link: &mut dyn Link,
    pc_id: u8,
    cmd: &InMemDicomObject,
    data: Option<&[u8]>,
) -> Result<()> {
    let command = encode_command(cmd).map_err(|k| failure(link.peer(), k))?;
    send_value(link, pc_id, PDataValueType::Command, &command)?;
    if let Some(d) = data {
        send_value(link, pc_id, PDataValueType::Data, d)?;
    }
    Ok(())
}

/// Send a data set of `len` bytes read from `r`, in PDUs that fit the peer's,
/// never holding more than one PDU of it. A read that fails or ends early
/// aborts the association (the peer would otherwise wait for the rest) and is
/// an error naming `label`.
pub fn send_data_from(
    link: &mut dyn Link,
    pc_id: u8,
    r: &mut dyn std::io::Read,
    len: u64,
    label: &std::path::Path,
) -> Result<()> {
    let max = max_fragment(link) as u64;
    let mut left = len;
    loop {
        let n = left.min(max) as usize;
        let mut buf = vec![0u8; n];
        if let Err(source) = r.read_exact(&mut buf) {
            link.abort_now();
            return Err(crate::error::Error::Io {
                path: label.to_path_buf(),
                source,
            });
        }
        left -= n as u64;
        link.send_pdu(&Pdu::PData {
            data: vec![PDataValue {
                presentation_context_id: pc_id,
                value_type: PDataValueType::Data,
                is_last: left == 0,
                data: buf,
            }],
        })?;
        if left == 0 {
            return Ok(());
        }
    }
}

/// Send a data set held in memory (see [`send_message`]).
pub fn send_data(link: &mut dyn Link, pc_id: u8, bytes: &[u8]) -> Result<()> {
    send_value(link, pc_id, PDataValueType::Data, bytes)
}

/// The largest PDV fragment for the peer: its maximum PDU less the PDU (6) and
/// PDV item (6) headers.
fn max_fragment(link: &dyn Link) -> usize {
    match link.peer_max_pdu() {
        0 => 1 << 20,
        n => (n as usize).saturating_sub(12).max(1024),
    }
}

fn send_value(
    link: &mut dyn Link,
    pc_id: u8,
    value_type: PDataValueType,
    bytes: &[u8],
) -> Result<()> {
    let max = max_fragment(link);
    let mut chunks = bytes.chunks(max).peekable();
    if bytes.is_empty() {
        return link.send_pdu(&Pdu::PData {
            data: vec![PDataValue {
                presentation_context_id: pc_id,
                value_type,
                is_last: true,
                data: Vec::new(),
            }],
        });
    }
    while let Some(c) = chunks.next() {
        link.send_pdu(&Pdu::PData {
            data: vec![PDataValue {
                presentation_context_id: pc_id,
                value_type: value_type.clone(),
                is_last: chunks.peek().is_none(),
                data: c.to_vec(),
            }],
        })?;
    }
    Ok(())
}

/// A 16-bit command attribute.
pub fn int(obj: &InMemDicomObject, tag: Tag) -> Option<u16> {
    obj.get(tag).and_then(|e| e.to_int::<u16>().ok())
}

/// A string command attribute, trimmed.
pub fn string(obj: &InMemDicomObject, tag: Tag) -> Option<String> {
    crate::dicom::attr::string(obj, tag)
}

pub fn put_us(o: &mut InMemDicomObject, tag: Tag, v: u16) {
    o.put(DataElement::new(tag, VR::US, PrimitiveValue::from(v)));
}

pub fn put_ui(o: &mut InMemDicomObject, tag: Tag, v: &str) {
    o.put(DataElement::new(tag, VR::UI, PrimitiveValue::from(v)));
}

pub fn put_ae(o: &mut InMemDicomObject, tag: Tag, v: &str) {
    o.put(DataElement::new(tag, VR::AE, PrimitiveValue::from(v)));
}

/// A request command set.
pub fn request(field: u16, message_id: u16, class: &str, has_data: bool) -> InMemDicomObject {
    let mut o = InMemDicomObject::new_empty();
    put_ui(&mut o, tags::AFFECTED_SOP_CLASS_UID, class);
    put_us(&mut o, tags::COMMAND_FIELD, field);
    put_us(&mut o, tags::MESSAGE_ID, message_id);
    put_us(
        &mut o,
        tags::COMMAND_DATA_SET_TYPE,
        if has_data { HAS_DATA_SET } else { NO_DATA_SET },
    );
    o
}

/// A response command set to `rq` (no data set).
pub fn response(rq: &InMemDicomObject, field: u16, status: u16, class: &str) -> InMemDicomObject {
    let id = int(rq, tags::MESSAGE_ID).unwrap_or(0);
    let mut o = InMemDicomObject::new_empty();
    put_ui(&mut o, tags::AFFECTED_SOP_CLASS_UID, class);
    put_us(&mut o, tags::COMMAND_FIELD, field);
    put_us(&mut o, tags::MESSAGE_ID_BEING_RESPONDED_TO, id);
    put_us(&mut o, tags::COMMAND_DATA_SET_TYPE, NO_DATA_SET);
    put_us(&mut o, tags::STATUS, status);
    o
}

/// Does a command say a data set follows?
pub fn has_data_set(cmd: &InMemDicomObject) -> bool {
    int(cmd, tags::COMMAND_DATA_SET_TYPE).unwrap_or(NO_DATA_SET) != NO_DATA_SET
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Silent;

    impl std::io::Read for Silent {
        fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
            Err(std::io::ErrorKind::WouldBlock.into())
        }
    }

    #[test]
    fn pdu_read_failures_say_what_kind_they_are() {
        let closed: &[u8] = &[];
        assert!(matches!(
            read_pdu(&mut &closed[..], 1024),
            Err(NetFailure::Aborted(_))
        ));
        assert!(matches!(
            read_pdu(&mut Silent, 1024),
            Err(NetFailure::Timeout(_))
        ));
        // 256 bytes announced, 100 allowed.
        let big: &[u8] = &[0x04, 0, 0, 0, 1, 0];
        assert!(matches!(
            read_pdu(&mut &big[..], 100),
            Err(NetFailure::Operation(_))
        ));
        // A P-DATA-TF whose 4 bytes cannot hold a PDV item header.
        let short: &[u8] = &[0x04, 0, 0, 0, 0, 4, 0, 0, 0, 0];
        assert!(matches!(
            read_pdu(&mut &short[..], 1024),
            Err(NetFailure::Operation(_))
        ));
        let release: &[u8] = &[0x05, 0, 0, 0, 0, 4, 0, 0, 0, 0];
        assert!(matches!(
            read_pdu(&mut &release[..], 1024),
            Ok(Pdu::ReleaseRQ)
        ));
    }

    #[test]
    fn codec_failures_are_local_or_the_peers() {
        assert!(matches!(
            encode_dataset(&InMemDicomObject::new_empty(), "1.2.3.4"),
            Err(NetFailure::Local(_))
        ));
        assert!(matches!(
            parse_command(&[0xFF; 7]),
            Err(NetFailure::Operation(_))
        ));
    }
}
