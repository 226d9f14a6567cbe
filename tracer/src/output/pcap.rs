//! Packet capture output: a pcapng file of the sampled dropped packets, for tshark and Wireshark.
//! It owns the pcapng encoding (section header, one interface description per interface name,
//! enhanced packet blocks carrying the drop reason as a comment), and takes the session's
//! sampled drops as a [`DropSink`].

use std::{collections::HashMap, fmt::Write as _, io::Write};

use bytes::{BufMut, BytesMut};

use crate::{events::DropSample, session::DropSink};

const SHB: u32 = 0x0A0D_0D0A;
const IDB: u32 = 1;
const EPB: u32 = 6;
const BYTE_ORDER_MAGIC: u32 = 0x1A2B_3C4D;
const LINKTYPE_ETHERNET: u16 = 1;
/// Captured bytes beyond this are dropped, so the IDB's promise and the u32 length fields hold.
const SNAPLEN: u32 = 262_144;

const OPT_ENDOFOPT: u16 = 0;
const OPT_COMMENT: u16 = 1;
const SHB_USERAPPL: u16 = 4;
const IF_NAME: u16 = 2;
const IF_TSRESOL: u16 = 9;
/// Timestamps are in nanoseconds: 10^-9.
const TSRESOL_NANOS: u8 = 9;

/// Writes a pcapng section of Ethernet packets, one interface per distinct name.
pub struct PcapWriter<W: Write> {
    out: W,
    /// Interface name to its interface id (the IDB's index in the section).
    ifaces: HashMap<String, u32>,
    buf: BytesMut,
}

impl<W: Write> PcapWriter<W> {
    /// Writes the Section Header Block (with a shb_userappl option `tracer <version>`).
    pub fn new(mut out: W) -> std::io::Result<Self> {
        let mut buf = BytesMut::with_capacity(256);
        let appl = concat!("tracer ", env!("CARGO_PKG_VERSION"));
        block(&mut buf, SHB, |b| {
            b.put_u32_le(BYTE_ORDER_MAGIC);
            b.put_u16_le(1);
            b.put_u16_le(0);
            // Unknown section length: we stream.
            b.put_i64_le(-1);
            options(b, &[(SHB_USERAPPL, appl.as_bytes())]);
        });
        out.write_all(&buf)?;
        Ok(PcapWriter {
            out,
            ifaces: HashMap::new(),
            buf,
        })
    }

    /// Writes one Ethernet frame seen on `iface`, describing the interface first if this is
    /// the first packet from it. `timestamp_ns` counts nanoseconds since the Unix epoch,
    /// `original_len` is the frame's length on the wire and `data` its first bytes
    /// (at most 262144 are kept). `comment`, typically the drop reason, becomes the packet's
    /// comment; past 65535 bytes it is cut at a char boundary, and an empty one is left out.
    pub fn write_packet(
        &mut self,
        iface: &str,
        timestamp_ns: u64,
        original_len: u32,
        data: &[u8],
        comment: &str,
    ) -> std::io::Result<()> {
        let id = self.iface_id(iface)?;
        let data = &data[..data.len().min(SNAPLEN as usize)];
        let cap_len = data.len() as u32;
        self.buf.clear();
        block(&mut self.buf, EPB, |b| {
            b.put_u32_le(id);
            b.put_u32_le((timestamp_ns >> 32) as u32);
            b.put_u32_le(timestamp_ns as u32);
            b.put_u32_le(cap_len);
            // Readers reject a frame captured longer than it was on the wire.
            b.put_u32_le(original_len.max(cap_len));
            b.put_slice(data);
            pad(b, data.len());
            options(b, &[(OPT_COMMENT, truncate(comment).as_bytes())]);
        });
        self.out.write_all(&self.buf)
    }

    /// Flushes the underlying writer.
    pub fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }

    /// Gives back the underlying writer, without flushing it.
    pub fn into_inner(self) -> W {
        self.out
    }

    /// The id of `iface`, writing its Interface Description Block the first time.
    fn iface_id(&mut self, iface: &str) -> std::io::Result<u32> {
        if let Some(&id) = self.ifaces.get(iface) {
            return Ok(id);
        }
        self.buf.clear();
        block(&mut self.buf, IDB, |b| {
            b.put_u16_le(LINKTYPE_ETHERNET);
            b.put_u16_le(0);
            b.put_u32_le(SNAPLEN);
            options(
                b,
                &[
                    (IF_NAME, truncate(iface).as_bytes()),
                    (IF_TSRESOL, &[TSRESOL_NANOS]),
                ],
            );
        });
        self.out.write_all(&self.buf)?;
        // Only once the block is out, so a failed write describes the interface again next time.
        let id = self.ifaces.len() as u32;
        self.ifaces.insert(iface.to_owned(), id);
        Ok(id)
    }
}

/// Each sampled drop as a packet whose comment names the reason, interface, class, the kernel
/// function that dropped it and what the reason means.
impl<W: Write> DropSink for PcapWriter<W> {
    fn packet(&mut self, sample: &DropSample, wall_ns: u64) -> std::io::Result<()> {
        let f = &sample.flow;
        let mut comment = format!("drop reason {} on {}, class {}", f.reason, f.iface, f.class);
        if let Some(at) = &sample.location {
            let _ = write!(comment, ", at {at}");
        }
        if let Some(why) = f.reason.explain() {
            let _ = write!(comment, ": {why}");
        }
        self.write_packet(
            &f.iface,
            wall_ns,
            sample.len.max(sample.frame.len() as u32),
            &sample.frame,
            &comment,
        )
    }

    fn flush(&mut self) -> std::io::Result<()> {
        PcapWriter::flush(self)
    }
}

/// Appends a block: type, total length, body, and the total length again.
fn block(buf: &mut BytesMut, kind: u32, body: impl FnOnce(&mut BytesMut)) {
    let start = buf.len();
    buf.put_u32_le(kind);
    buf.put_u32_le(0);
    body(buf);
    let total = (buf.len() - start + 4) as u32;
    buf.put_u32_le(total);
    buf[start + 4..start + 8].copy_from_slice(&total.to_le_bytes());
}

/// Appends the non-empty options and the end-of-options marker (nothing if none are left).
fn options(buf: &mut BytesMut, opts: &[(u16, &[u8])]) {
    let mut any = false;
    for &(code, value) in opts.iter().filter(|(_, v)| !v.is_empty()) {
        buf.put_u16_le(code);
        buf.put_u16_le(value.len() as u16);
        buf.put_slice(value);
        pad(buf, value.len());
        any = true;
    }
    if any {
        buf.put_u16_le(OPT_ENDOFOPT);
        buf.put_u16_le(0);
    }
}

fn pad(buf: &mut BytesMut, len: usize) {
    buf.put_bytes(0, (4 - len % 4) % 4);
}

/// `s` cut to fit an option's 16-bit length without splitting a character.
fn truncate(s: &str) -> &str {
    let mut end = s.len().min(u16::MAX as usize);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use super::*;

    fn u16_at(b: &[u8], at: usize) -> u16 {
        u16::from_le_bytes([b[at], b[at + 1]])
    }

    fn u32_at(b: &[u8], at: usize) -> u32 {
        u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
    }

    /// Splits a file into (block type, body), checking both total lengths agree and are aligned.
    fn blocks(file: &[u8]) -> Vec<(u32, Vec<u8>)> {
        let (mut out, mut at) = (Vec::new(), 0);
        while at < file.len() {
            let (kind, len) = (u32_at(file, at), u32_at(file, at + 4) as usize);
            let ok = len % 4 == 0 && u32_at(file, at + len - 4) as usize == len;
            assert!(ok, "block {kind:#x} at {at}: bad total length {len}");
            out.push((kind, file[at + 8..at + len - 4].to_vec()));
            at += len;
        }
        out
    }

    /// The options from `at` to the end of `body`, checking zero padding and opt_endofopt last.
    fn options_at(body: &[u8], mut at: usize) -> Vec<(u16, Vec<u8>)> {
        let mut out = Vec::new();
        while at < body.len() {
            let (code, len) = (u16_at(body, at), u16_at(body, at + 2) as usize);
            at += 4;
            if code == OPT_ENDOFOPT {
                assert_eq!((len, at), (0, body.len()), "endofopt last");
                return out;
            }
            let padded = len.div_ceil(4) * 4;
            let zeros = body[at + len..at + padded].iter().all(|&b| b == 0);
            assert!(zeros, "option {code}: padding not zero");
            out.push((code, body[at..at + len].to_vec()));
            at += padded;
        }
        assert!(out.is_empty(), "options without opt_endofopt: {out:?}");
        out
    }

    fn write(packets: &[(&str, u64, u32, &[u8], &str)]) -> Vec<(u32, Vec<u8>)> {
        let mut w = PcapWriter::new(Vec::new()).unwrap();
        for &(iface, ts, len, data, comment) in packets {
            w.write_packet(iface, ts, len, data, comment).unwrap();
        }
        blocks(&w.into_inner())
    }

    #[test]
    fn section_header() {
        let file = PcapWriter::new(Vec::new()).unwrap().into_inner();
        assert_eq!(file[..4], [0x0A, 0x0D, 0x0D, 0x0A], "SHB block type");
        let blocks = blocks(&file);
        let [(SHB, body)] = &blocks[..] else {
            panic!("want one SHB: {blocks:?}")
        };
        assert_eq!(body[..4], [0x4D, 0x3C, 0x2B, 0x1A], "LE magic");
        assert_eq!((u16_at(body, 4), u16_at(body, 6)), (1, 0), "version");
        assert_eq!(body[8..16], [0xFF; 8], "section length -1");
        let appl = format!("tracer {}", env!("CARGO_PKG_VERSION"));
        assert_eq!(options_at(body, 16), [(SHB_USERAPPL, appl.into_bytes())]);
    }

    #[test]
    fn packet_data_and_comment_padding() {
        for n in 0..=5 {
            let (data, comment) = (vec![0xAB; n], "c".repeat(n));
            let blocks = write(&[("eth0", 0x1234_5678_9ABC_DEF0, 1500, &data, &comment)]);
            let (kind, body) = &blocks[2];
            let fields: Vec<u32> = (0..5).map(|i| u32_at(body, 4 * i)).collect();
            let want = [0, 0x1234_5678, 0x9ABC_DEF0, n as u32, 1500];
            assert_eq!((*kind, &fields[..]), (EPB, &want[..]), "EPB {n}");
            let padded = n.div_ceil(4) * 4;
            let want = [&data[..], &[0; 3][..padded - n]].concat();
            assert_eq!(body[20..20 + padded], want, "data {n}");
            let want = [(OPT_COMMENT, comment.into_bytes())];
            let want = if n == 0 { &want[..0] } else { &want[..] };
            assert_eq!(options_at(body, 20 + padded), want, "length {n}");
            let opts_len = if n == 0 { 0 } else { 4 + padded + 4 };
            assert_eq!(body.len(), 20 + padded + opts_len, "EPB body length, {n}");
        }
    }

    #[test]
    fn one_description_per_interface() {
        let blocks = write(&[
            ("va", 1, 60, &[1], "a"),
            ("vb", 2, 60, &[2], "b"),
            ("va", 3, 60, &[3], "c"),
        ]);
        let kinds: Vec<u32> = blocks.iter().map(|(k, _)| *k).collect();
        assert_eq!(kinds, [SHB, IDB, EPB, IDB, EPB, EPB]);
        for (idb, name) in [(&blocks[1].1, "va"), (&blocks[3].1, "vb")] {
            let head = (u16_at(idb, 0), u16_at(idb, 2), u32_at(idb, 4));
            assert_eq!(head, (LINKTYPE_ETHERNET, 0, SNAPLEN), "IDB of {name}");
            let want = [(IF_NAME, name.as_bytes().to_vec()), (IF_TSRESOL, vec![9])];
            assert_eq!(options_at(idb, 8), want, "IDB of {name}");
        }
        for (i, id, byte) in [(2, 0, 1), (4, 1, 2), (5, 0, 3)] {
            let epb = &blocks[i].1;
            assert_eq!((u32_at(epb, 0), epb[20]), (id, byte), "packet {byte}");
        }
    }

    #[test]
    fn oversized_input_is_cut_not_miswritten() {
        let (name, comment) = ("é".repeat(40_000), format!("x{}", "€".repeat(30_000)));
        let big = vec![7; SNAPLEN as usize + 3];
        let blocks = write(&[(&name, u64::MAX, 10, &big, &comment), ("", 0, 0, &[], "")]);
        let name = &options_at(&blocks[1].1, 8)[0].1;
        assert_eq!(name.len(), 65534, "if_name cut to whole two-byte chars");
        assert!(std::str::from_utf8(name).is_ok());
        let epb = &blocks[2].1;
        let lens = (u32_at(epb, 12), u32_at(epb, 16));
        assert_eq!(lens, (SNAPLEN, SNAPLEN), "cap and orig len");
        let comment = &options_at(epb, 20 + SNAPLEN as usize)[0].1;
        assert_eq!(comment.len(), 1 + 3 * 21_844, "cut at a char boundary");
        assert!(std::str::from_utf8(comment).is_ok());
        // An empty name still gets its own interface; the empty comment is left out.
        assert_eq!(blocks[3].0, IDB);
        assert_eq!(blocks[4].1.len(), 20, "EPB without data or options");
    }

    /// Ethernet/IPv4/UDP to `dport`, with `payload` bytes after the UDP header.
    fn udp_frame(dport: u16, payload: usize) -> Vec<u8> {
        let mut ip = BytesMut::new();
        ip.put_slice(&[0x45, 0]);
        ip.put_u16((20 + 8 + payload) as u16);
        ip.put_slice(&[0, 1, 0x40, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
        let sum: u32 = ip
            .chunks(2)
            .map(|w| u32::from(w[0]) << 8 | u32::from(w[1]))
            .sum();
        ip[10..12].copy_from_slice(&(!((sum & 0xFFFF) + (sum >> 16)) as u16).to_be_bytes());
        let mut f = BytesMut::new();
        f.put_slice(&[2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00]);
        f.put_slice(&ip);
        for v in [40000, dport, 8 + payload as u16, 0] {
            f.put_u16(v);
        }
        f.put_bytes(0x5A, payload);
        f.to_vec()
    }

    #[test]
    fn tshark_reads_it_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("drops.pcapng");
        let file = std::fs::File::create(&path).unwrap();
        let mut w = PcapWriter::new(std::io::BufWriter::new(file)).unwrap();
        // The first frame is 1514 bytes on the wire, of which the probe copied 96.
        let (a, b) = (udp_frame(4789, 1472), udp_frame(4789, 50));
        let reason = "drop reason NETFILTER_DROP on va";
        w.write_packet("va", 1_700_000_000_123_456_789, 1514, &a[..96], reason)
            .unwrap();
        let reason = "drop reason NO_SOCKET on vb";
        w.write_packet("vb", 1_700_000_001_000_000_001, 92, &b, reason)
            .unwrap();
        w.flush().unwrap();
        drop(w);

        let fields = "frame.comment frame.interface_name udp.dstport \
                      frame.len frame.cap_len frame.time_epoch";
        let mut cmd = Command::new("tshark");
        cmd.arg("-r").arg(&path);
        cmd.args(["-T", "fields", "-E", "separator=|"]);
        cmd.args(fields.split_whitespace().flat_map(|f| ["-e", f]));
        let out = cmd.output().expect("tshark (apt-get install tshark)");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "tshark: {}\n{stderr}", out.status);
        // tshark warns about running as root; anything else on stderr is about the file.
        let mut warnings = stderr.lines().filter(|l| !l.contains("Running as user"));
        assert!(warnings.next().is_none(), "tshark stderr: {stderr}");
        let stdout = String::from_utf8(out.stdout).unwrap();
        let want = [
            "drop reason NETFILTER_DROP on va|va|4789|1514|96|1700000000.123456789",
            "drop reason NO_SOCKET on vb|vb|4789|92|92|1700000001.000000001",
        ];
        assert_eq!(stdout.lines().collect::<Vec<_>>(), want, "tshark fields");
    }
}
