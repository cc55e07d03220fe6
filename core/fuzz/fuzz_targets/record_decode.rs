//! Persistent-record decoding on arbitrary bytes: never panics; whatever decodes re-encodes
//! to the same record. The input is tried as-is and with a valid format byte + CRC-32 framed
//! around it, so the fuzzer also reaches the postcard payload behind the CRC gate.
#![no_main]

use eyas_core::record::{RECORD_FORMAT, RECORD_MAX_LEN, Record};
use libfuzzer_sys::fuzz_target;

const CRC: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);

fn check(bytes: &[u8]) {
    if let Ok(r) = Record::decode(bytes) {
        let mut buf = [0u8; RECORD_MAX_LEN];
        let again = r.encode(&mut buf).expect("encodes");
        assert_eq!(Record::decode(again).expect("decodes"), r);
    }
}

fuzz_target!(|data: &[u8]| {
    check(data);
    if data.len() + 5 <= RECORD_MAX_LEN {
        let mut framed = [0u8; RECORD_MAX_LEN];
        framed[0] = RECORD_FORMAT;
        framed[1..=data.len()].copy_from_slice(data);
        let crc = CRC.checksum(&framed[..=data.len()]);
        framed[data.len() + 1..data.len() + 5].copy_from_slice(&crc.to_le_bytes());
        check(&framed[..data.len() + 5]);
    }
});
