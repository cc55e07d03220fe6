//! The CRC-32 used by U-Boot environments and Barebox state (zlib / IEEE 802.3: reflected
//! polynomial 0xEDB88320, init and final XOR 0xFFFFFFFF).

const CRC32: ::crc::Crc<u32> = ::crc::Crc::<u32>::new(&::crc::CRC_32_ISO_HDLC);

/// zlib's `crc32(0, data, len)`.
#[must_use]
pub fn crc32(data: &[u8]) -> u32 {
    CRC32.checksum(data)
}
