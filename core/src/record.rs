//! The reboot-safe persistent record of the client.
//!
//! The [`Client`](crate::client::Client) asks the shell to store this record (via
//! `Action::PersistRecord`) before every reboot-relevant step, and the shell hands the bytes back
//! after boot (`Client::handle_boot`). Encoding: one format byte, the postcard encoding of
//! [`Record`], then a CRC-32 (ISO-HDLC, little endian) over everything before it. A record whose
//! CRC or format does not match is reported to the shell and never trusted.
//!
//! Slots are named by RAUC's bootname (any string of 1 to [`MAX_BOOTNAME_LEN`] bytes: `A`,
//! `system0`, `rootfs.1`, …), never by an assumed A/B letter. Format 1 (written before bootnames
//! were kept) stored an A/B enum; it is still read, as the bootnames `A` and `B`.

use crate::ddi::ActionId;
use crate::varint::{Reader, Writer};
use serde::{Deserialize, Serialize};

/// Largest encoded record in bytes: a shell storing [`RECORD_MAX_LEN`] bytes can store any record.
pub const RECORD_MAX_LEN: usize = 176;
/// Longest version string kept in the record (bytes); longer ones are cut and end with `~`.
pub const RECORD_VERSION_LEN: usize = 48;
/// Format byte at the start of every record written now.
pub const RECORD_FORMAT: u8 = 2;
/// The first format (A/B enum instead of bootnames); read, never written.
pub const RECORD_FORMAT_AB: u8 = 1;
/// Longest bootname kept (the same capacity as [`crate::slots`]).
pub const MAX_BOOTNAME_LEN: usize = crate::slots::MAX_BOOTNAME_LEN;

/// A RAUC bootname (`A`, `system0`, `rootfs.1`, …): compared as given, never interpreted.
pub type Bootname = heapless::String<MAX_BOOTNAME_LEN>;

/// A bootname that is empty, longer than [`MAX_BOOTNAME_LEN`] bytes, or has a control character.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct BadBootname {
    /// Its length in bytes.
    pub len: usize,
}

impl core::fmt::Display for BadBootname {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "bootname of {} bytes: a bootname must have 1 to {MAX_BOOTNAME_LEN} bytes and no control characters",
            self.len
        )
    }
}

/// Checks and copies a bootname.
pub fn bootname(s: &str) -> Result<Bootname, BadBootname> {
    let bad = BadBootname { len: s.len() };
    if s.is_empty() || s.bytes().any(|b| b < 0x20 || b == 0x7f) {
        return Err(bad);
    }
    Bootname::try_from(s).map_err(|_| bad)
}

/// Bitwise (no 1 KB lookup table in flash): a record is at most 160 bytes, checked once per boot.
const CRC: crc::Crc<u32, crc::NoTable> = crc::Crc::<u32, crc::NoTable>::new(&crc::CRC_32_ISO_HDLC);

/// Where an action stood when the record was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Phase {
    /// Downloading artifact `next_artifact` (earlier ones are downloaded and verified).
    Downloading,
    /// Everything downloaded and verified; waiting for the maintenance window.
    AwaitingWindow,
    /// Installing chunk number `next_chunk` of the install order (`attempt` counts tries).
    Installing,
    /// The OS chunk is installed into `target_slot`; a reboot was requested.
    Rebooting,
    /// The final result is known but its feedback was not acknowledged yet.
    Reporting {
        /// The result to report.
        success: bool,
        /// A short reason code (the client's reason codes, `client/reason.rs`).
        reason: u8,
    },
    /// The action is closed and hawkBit has its final feedback (or no longer knows it): nothing
    /// is pending, and a server that offers it again (a stale cache or proxy) is not obeyed.
    Closed,
}

/// The persistent part of the client's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Record {
    /// The hawkBit action.
    pub action_id: ActionId,
    /// Where it stood.
    pub phase: Phase,
    /// Bootname of the slot the OS chunk was installed into (RAUC's primary after the install).
    pub target_slot: Option<Bootname>,
    /// Bootname of the slot that ran when the OS chunk was installed (where to return to).
    pub from_slot: Option<Bootname>,
    /// Version of the running system when the action started (informational).
    pub from_version: heapless::String<RECORD_VERSION_LEN>,
    /// Version of the OS chunk being installed (informational).
    pub to_version: heapless::String<RECORD_VERSION_LEN>,
    /// Install attempts so far (power cuts during install count).
    pub attempt: u8,
    /// Next artifact to download (index into the deployment's artifact list).
    pub next_artifact: u8,
    /// Next chunk to install (index into the install order).
    pub next_chunk: u8,
    /// Status entries this action has (probably) created server-side so far.
    pub status_entries: u16,
    /// Bytes of artifact `next_artifact` known to be stored (checkpoint for a resume by range).
    pub resume_offset: u64,
}

/// Errors decoding or encoding a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum RecordError {
    /// Fewer bytes than the smallest record.
    TooShort {
        /// Bytes given.
        len: usize,
    },
    /// More bytes than [`RECORD_MAX_LEN`].
    TooLong {
        /// Bytes given.
        len: usize,
    },
    /// The CRC-32 does not match: the record is corrupt.
    BadCrc {
        /// CRC stored in the record.
        stored: u32,
        /// CRC computed over the bytes.
        computed: u32,
    },
    /// Unknown format byte.
    BadFormat {
        /// The byte found.
        format: u8,
    },
    /// CRC fine but the payload does not decode (written by an incompatible version).
    Malformed,
    /// Encoding failed (cannot happen with a [`RECORD_MAX_LEN`] buffer).
    Encode,
}

impl core::fmt::Display for RecordError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::TooShort { len } => write!(f, "record too short ({len} bytes)"),
            Self::TooLong { len } => write!(f, "record too long ({len} bytes)"),
            Self::BadCrc { stored, computed } => {
                write!(
                    f,
                    "record CRC mismatch (stored {stored:08x}, computed {computed:08x})"
                )
            }
            Self::BadFormat { format } => write!(f, "unknown record format {format}"),
            Self::Malformed => f.write_str("record payload does not decode"),
            Self::Encode => f.write_str("record does not encode"),
        }
    }
}

/// Copy `s` into a record version string, marking a cut with a trailing `~`.
pub fn record_version(s: &str) -> heapless::String<RECORD_VERSION_LEN> {
    let mut out = heapless::String::new();
    if s.len() <= RECORD_VERSION_LEN {
        let _ = out.push_str(s);
        return out;
    }
    for c in s.chars() {
        if out.len() + c.len_utf8() > RECORD_VERSION_LEN - 1 {
            break;
        }
        let _ = out.push(c);
    }
    let _ = out.push('~');
    out
}

impl Record {
    /// A fresh record for `action_id` in `phase`.
    pub const fn new(action_id: ActionId, phase: Phase) -> Self {
        Self {
            action_id,
            phase,
            target_slot: None,
            from_slot: None,
            from_version: heapless::String::new(),
            to_version: heapless::String::new(),
            attempt: 0,
            next_artifact: 0,
            next_chunk: 0,
            status_entries: 0,
            resume_offset: 0,
        }
    }

    /// Encode into `buf` (give it [`RECORD_MAX_LEN`] bytes); returns the used prefix.
    pub fn encode<'b>(&self, buf: &'b mut [u8]) -> Result<&'b [u8], RecordError> {
        let (head, rest) = buf.split_first_mut().ok_or(RecordError::Encode)?;
        *head = RECORD_FORMAT;
        let used = self.write_payload(rest).ok_or(RecordError::Encode)?;
        let body_len = 1 + used;
        let crc = CRC.checksum(buf.get(..body_len).ok_or(RecordError::Encode)?);
        buf.get_mut(body_len..body_len + 4)
            .ok_or(RecordError::Encode)?
            .copy_from_slice(&crc.to_le_bytes());
        buf.get(..body_len + 4).ok_or(RecordError::Encode)
    }

    /// Decode and check a stored record.
    pub fn decode(bytes: &[u8]) -> Result<Self, RecordError> {
        let len = bytes.len();
        if len < 6 {
            return Err(RecordError::TooShort { len });
        }
        if len > RECORD_MAX_LEN {
            return Err(RecordError::TooLong { len });
        }
        let (body, tail) = bytes.split_at(len - 4);
        let mut crc_bytes = [0u8; 4];
        crc_bytes.copy_from_slice(tail);
        let stored = u32::from_le_bytes(crc_bytes);
        let computed = CRC.checksum(body);
        if stored != computed {
            return Err(RecordError::BadCrc { stored, computed });
        }
        let ab = match body.first() {
            Some(&RECORD_FORMAT) => false,
            Some(&RECORD_FORMAT_AB) => true,
            Some(&format) => return Err(RecordError::BadFormat { format }),
            None => return Err(RecordError::TooShort { len }),
        };
        let payload = body.get(1..).ok_or(RecordError::Malformed)?;
        let mut r = Reader::new(payload);
        let rec = Self::read_payload(&mut r, ab).ok_or(RecordError::Malformed)?;
        if !r.rest().is_empty() {
            return Err(RecordError::Malformed);
        }
        Ok(rec)
    }

    /// The postcard encoding of the record (what `postcard::to_slice(self, out)` writes; the
    /// tests hold the two together), by hand: no serde serializer in an MCU image.
    fn write_payload(&self, out: &mut [u8]) -> Option<usize> {
        let mut w = Writer::new(out);
        w.varint(self.action_id.0)?;
        match self.phase {
            Phase::Downloading => w.varint(0)?,
            Phase::AwaitingWindow => w.varint(1)?,
            Phase::Installing => w.varint(2)?,
            Phase::Rebooting => w.varint(3)?,
            Phase::Reporting { success, reason } => {
                w.varint(4)?;
                w.byte(u8::from(success))?;
                w.byte(reason)?;
            }
            Phase::Closed => w.varint(5)?,
        }
        for slot in [&self.target_slot, &self.from_slot] {
            match slot {
                None => w.byte(0)?,
                Some(name) => {
                    w.byte(1)?;
                    w.str(name)?;
                }
            }
        }
        w.str(&self.from_version)?;
        w.str(&self.to_version)?;
        w.bytes(&[self.attempt, self.next_artifact, self.next_chunk])?;
        w.varint(self.status_entries.into())?;
        w.varint(self.resume_offset)?;
        Some(w.len())
    }

    /// Reads what [`Record::write_payload`] writes, accepting exactly what
    /// `postcard::take_from_bytes::<Record>` accepts; `ab`: format 1, whose only slot field was
    /// an A/B enum (read as the bootnames `A`/`B`, no `from_slot`).
    fn read_payload(r: &mut Reader<'_>, ab: bool) -> Option<Self> {
        let action_id = ActionId(r.u64()?);
        let phase = match r.u32()? {
            0 => Phase::Downloading,
            1 => Phase::AwaitingWindow,
            2 => Phase::Installing,
            3 => Phase::Rebooting,
            4 => Phase::Reporting {
                success: r.bool()?,
                reason: r.byte()?,
            },
            5 if !ab => Phase::Closed,
            _ => return None,
        };
        let (target_slot, from_slot) = if ab {
            let target = match r.byte()? {
                0 => None,
                1 => Some(match r.u32()? {
                    0 => Bootname::try_from("A").ok()?,
                    1 => Bootname::try_from("B").ok()?,
                    _ => return None,
                }),
                _ => return None,
            };
            (target, None)
        } else {
            (read_bootname(r)?, read_bootname(r)?)
        };
        let from_version = heapless::String::try_from(r.str()?).ok()?;
        let to_version = heapless::String::try_from(r.str()?).ok()?;
        Some(Self {
            action_id,
            phase,
            target_slot,
            from_slot,
            from_version,
            to_version,
            attempt: r.byte()?,
            next_artifact: r.byte()?,
            next_chunk: r.byte()?,
            status_entries: r.u16()?,
            resume_offset: r.u64()?,
        })
    }
}

/// `Option<Bootname>` as postcard writes it (0, or 1 + length + bytes).
fn read_bootname(r: &mut Reader<'_>) -> Option<Option<Bootname>> {
    match r.byte()? {
        0 => Some(None),
        1 => Some(Some(Bootname::try_from(r.str()?).ok()?)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> Record {
        let mut r = Record::new(
            ActionId(42),
            Phase::Reporting {
                success: false,
                reason: 3,
            },
        );
        r.target_slot = Some(bootname("system.1-abcdefg").unwrap());
        r.from_slot = Some(bootname("rootfs.0-ä_xyzw").unwrap());
        r.from_version = record_version("1.1.0");
        r.to_version = record_version(&"9".repeat(100));
        r.attempt = 2;
        r.next_artifact = 1;
        r.next_chunk = 1;
        r.status_entries = 999;
        r.resume_offset = u64::MAX;
        r
    }

    #[test]
    fn round_trip_and_max_len() {
        let r = sample();
        let mut buf = [0u8; RECORD_MAX_LEN];
        let bytes = r.encode(&mut buf).unwrap();
        assert!(bytes.len() <= RECORD_MAX_LEN);
        assert_eq!(Record::decode(bytes).unwrap(), r);
        assert!(r.to_version.ends_with('~'));
        assert_eq!(r.to_version.len(), RECORD_VERSION_LEN);
    }

    #[test]
    fn every_bit_flip_is_caught() {
        let r = sample();
        let mut buf = [0u8; RECORD_MAX_LEN];
        let len = r.encode(&mut buf).unwrap().len();
        for i in 0..len * 8 {
            let mut b = buf;
            b[i / 8] ^= 1 << (i % 8);
            assert!(Record::decode(&b[..len]).is_err(), "flip {i} accepted");
        }
        assert!(matches!(
            Record::decode(&buf[..3]),
            Err(RecordError::TooShort { .. })
        ));
        assert!(matches!(
            Record::decode(&[0u8; RECORD_MAX_LEN + 1]),
            Err(RecordError::TooLong { .. })
        ));
    }

    fn postcard_decode(payload: &[u8]) -> Option<Record> {
        match postcard::take_from_bytes::<Record>(payload) {
            Ok((rec, [])) => Some(rec),
            _ => None,
        }
    }

    fn ours_decode(payload: &[u8]) -> Option<Record> {
        let mut r = Reader::new(payload);
        let rec = Record::read_payload(&mut r, false)?;
        r.rest().is_empty().then_some(rec)
    }

    fn arb_record() -> impl Strategy<Value = Record> {
        (
            any::<u64>(),
            0u8..7,
            any::<bool>(),
            any::<u8>(),
            (0u8..3, 0u8..3),
            "[a-z0-9.ü~]{0,20}",
            "[a-z0-9.]{0,48}",
            any::<[u8; 3]>(),
            any::<u16>(),
            any::<u64>(),
        )
            .prop_map(|(id, ph, success, reason, slot, from, to, b, st, off)| {
                let phase = match ph {
                    0 => Phase::Downloading,
                    1 => Phase::AwaitingWindow,
                    2 => Phase::Installing,
                    3 => Phase::Rebooting,
                    6 => Phase::Closed,
                    _ => Phase::Reporting { success, reason },
                };
                let mut r = Record::new(ActionId(id), phase);
                let names = [None, Some("A"), Some("system.1-x_y0123456")];
                let pick = |i: u8| {
                    names[usize::from(i)]
                        .map(|n| Bootname::try_from(n.get(..n.len().min(16)).unwrap()).unwrap())
                };
                r.target_slot = pick(slot.0);
                r.from_slot = pick(slot.1);
                r.from_version = record_version(&from);
                r.to_version = record_version(&to);
                [r.attempt, r.next_artifact, r.next_chunk] = b;
                r.status_entries = st;
                r.resume_offset = off;
                r
            })
    }

    proptest! {
        /// The hand-written payload codec is byte for byte postcard's.
        #[test]
        fn payload_is_postcard(rec in arb_record()) {
            let mut a = [0u8; RECORD_MAX_LEN];
            let mut b = [0u8; RECORD_MAX_LEN];
            let n = rec.write_payload(&mut a).unwrap();
            let want = postcard::to_slice(&rec, &mut b).unwrap();
            prop_assert_eq!(&a[..n], &*want);
            prop_assert_eq!(ours_decode(&a[..n]), Some(rec));
        }

        /// Any bytes (mutated encodings and noise): the same accept/reject and the same value.
        #[test]
        fn decode_accepts_what_postcard_accepts(
            rec in arb_record(),
            edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..4),
            cut in any::<usize>(),
            extra in proptest::collection::vec(any::<u8>(), 0..3),
        ) {
            let mut buf = [0u8; RECORD_MAX_LEN];
            let n = rec.write_payload(&mut buf).unwrap();
            let mut v = buf[..n].to_vec();
            for (pos, byte) in edits {
                let i = pos % v.len();
                v[i] = byte;
            }
            v.truncate(cut % (v.len() + 1) + v.len() / 2);
            v.extend_from_slice(&extra);
            prop_assert_eq!(ours_decode(&v), postcard_decode(&v));
        }

        #[test]
        fn noise_decodes_like_postcard(v in proptest::collection::vec(any::<u8>(), 0..80)) {
            prop_assert_eq!(ours_decode(&v), postcard_decode(&v));
        }
    }

    #[test]
    fn varint_edges_like_postcard() {
        // non-canonical but accepted, over-long and overflowing last bytes rejected
        for tail in [
            &[0x80, 0x00][..],
            &[0xff, 0xff, 0x03],
            &[0xff, 0xff, 0x04],
            &[0x80, 0x80, 0x80],
            &[0xff; 10],
            &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
            &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02],
        ] {
            let mut buf = [0u8; RECORD_MAX_LEN];
            let n = sample().write_payload(&mut buf).unwrap();
            // replace the trailing resume_offset varint (u64::MAX, 10 bytes) by `tail`
            let mut v = buf[..n - 10].to_vec();
            v.extend_from_slice(tail);
            assert_eq!(ours_decode(&v), postcard_decode(&v), "{tail:02x?}");
        }
    }

    /// A record written by the A/B-only format 1 (e.g. by the eyas that installed this one):
    /// read with its slot as the bootname `B`, never as corrupt.
    #[test]
    fn format_1_records_are_read() {
        let mut v: heapless::Vec<u8, 32> = heapless::Vec::new();
        v.extend_from_slice(&[RECORD_FORMAT_AB, 42, 3, 1, 1])
            .unwrap();
        v.extend_from_slice(&[3, b'1', b'.', b'0', 3, b'2', b'.', b'0', 0, 1, 1, 5, 0])
            .unwrap();
        let crc = CRC.checksum(&v);
        v.extend_from_slice(&crc.to_le_bytes()).unwrap();
        let rec = Record::decode(&v).unwrap();
        assert_eq!(rec.action_id, ActionId(42));
        assert_eq!(rec.phase, Phase::Rebooting);
        assert_eq!(rec.target_slot.as_deref(), Some("B"));
        assert_eq!(rec.from_slot, None);
        assert_eq!(rec.to_version.as_str(), "2.0");
        // the same payload under the current format byte is not a valid record
        let mut w = v.clone();
        w[0] = RECORD_FORMAT;
        let n = w.len();
        let crc = CRC.checksum(&w[..n - 4]);
        w[n - 4..].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(Record::decode(&w), Err(RecordError::Malformed));
    }

    #[test]
    fn bootnames_are_checked() {
        assert_eq!(bootname("system0").unwrap().as_str(), "system0");
        assert_eq!(bootname("rootfs.1").unwrap().as_str(), "rootfs.1");
        assert_eq!(bootname(""), Err(BadBootname { len: 0 }));
        assert_eq!(bootname("a\nb"), Err(BadBootname { len: 3 }));
        assert_eq!(bootname(&"x".repeat(17)), Err(BadBootname { len: 17 }));
        assert!(bootname(&"x".repeat(16)).is_ok());
    }

    #[test]
    fn small_buffer_is_an_error() {
        let mut buf = [0u8; 8];
        assert_eq!(sample().encode(&mut buf), Err(RecordError::Encode));
    }
}
