//! Barebox state: the `barebox,state` description read from a dtb, the `raw` format and the
//! `direct` bucket storage, as barebox and dt-utils (`barebox-state`) use them.
//!
//! # Storage (raw format, direct storage)
//! Three buckets at `n × backend-stridesize`, each:
//!
//! | bytes | field |
//! |---|---|
//! | 0..4 | direct meta magic `0x2354fdf3` (LE) |
//! | 4..8 | written length = 16 + data length |
//! | 8..12 | state magic (the node's `magic`) |
//! | 12..14 | reserved (0) |
//! | 14..16 | data length (u16) |
//! | 16..20 | CRC-32 of the data |
//! | 20..24 | CRC-32 of bytes 8..20 (the first 12 header bytes) |
//! | 24.. | data: every variable at its `reg` offset, native (little-endian) order |
//!
//! # Load and save
//! | operation | rule |
//! |---|---|
//! | load | the first bucket, in order, whose meta, magic, lengths and both CRCs check (as dt-utils: the stored data may be longer than the description's) |
//! | no valid bucket | [`StateError::NoValidBucket`]; barebox then uses the defaults, and so does [`StateDesc::defaults`] when asked |
//! | save | all three buckets in **reverse** order (2, 1, 0), each written and synced before the next |
//!
//! Why reverse: a load takes the first valid bucket `j`, and buckets before `j` are invalid.
//! While bucket `k > j` is written, bucket `j` (the old state) still wins; while `k ≤ j` is
//! written, every bucket after `k` already holds the new state, and every bucket before `k` is
//! invalid, so a torn bucket `k` yields the new state. Old or new, never older, even when earlier
//! cuts left the buckets different and nothing "refreshed" them. barebox and dt-utils save in
//! forward order and rely on refreshing differing buckets at load time; with forward order and no
//! refresh, a cut in bucket 0 after an earlier cut that left `[new, old, old]` would fall back
//! two states (the random-walk power-cut test found exactly that). The final bytes are the same
//! as `barebox-state`'s. [`load`] never writes.

pub mod fdt;

use crate::crc::crc32;
use crate::storage::Storage;
use core::fmt;
use fdt::{Fdt, FdtError, Node};
use heapless::{String, Vec};

/// Direct-storage meta magic.
pub const DIRECT_MAGIC: u32 = 0x2354_fdf3;
/// Size of the direct meta (magic + written length).
pub const DIRECT_META_LEN: usize = 8;
/// Size of the raw header.
pub const RAW_HEADER_LEN: usize = 16;
/// Number of direct buckets.
pub const BUCKETS: usize = 3;
/// Most variables in one state.
pub const MAX_VARS: usize = 32;
/// Longest dotted variable name.
pub const MAX_NAME: usize = 96;
/// Largest data area.
pub const MAX_DATA: usize = 512;
/// Deepest group nesting below the state node.
pub const MAX_GROUP_DEPTH: usize = 8;
/// Largest `backend-stridesize` accepted (a bucket is read into memory whole).
pub const MAX_STRIDE: u32 = 1 << 20;
/// The bootchooser prefix RAUC hard-codes.
pub const BOOTSTATE: &str = "bootstate";

/// A variable's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VarType {
    /// `uint8`.
    U8,
    /// `uint32`.
    U32,
    /// `enum32` (stored as u32).
    Enum32,
    /// `mac` (6 bytes).
    Mac,
    /// `string` (fixed size).
    String,
}

/// One variable of the state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Var {
    /// Dotted name below the state node, e.g. `bootstate.system0.priority`.
    pub name: String<MAX_NAME>,
    /// Type.
    pub ty: VarType,
    /// Offset in the data area.
    pub offset: usize,
    /// Size in bytes.
    pub size: usize,
    /// Default value (numeric types; 0 when the node has none).
    pub default: u32,
}

/// The state description: format, storage, variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateDesc {
    /// The node's `magic`.
    pub magic: u32,
    /// `backend-stridesize`.
    pub stride: u32,
    /// Data area length (end of the last variable).
    pub data_len: usize,
    /// The variables.
    pub vars: Vec<Var, MAX_VARS>,
}

/// The values of a state: its data area.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Values {
    /// Packed data, `desc.data_len` bytes.
    pub data: Vec<u8, MAX_DATA>,
}

/// Errors of the Barebox codec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StateError {
    /// The dtb is malformed.
    Fdt(FdtError),
    /// No alias names the state and there is no node `/state`.
    StateNodeNotFound,
    /// The node is not `compatible = "barebox,state"`.
    NotBareboxState,
    /// A required property is missing (`magic`, `backend-stridesize`, a variable's `reg`/`type`).
    MissingProperty(&'static str),
    /// `backend-type` other than `raw`, `backend-storage-type` other than `direct`, or `algo`
    /// (HMAC) is set.
    Unsupported(&'static str),
    /// A variable has an unknown `type`.
    UnknownType,
    /// A capacity is exceeded ([`MAX_VARS`], [`MAX_NAME`], [`MAX_DATA`], [`MAX_GROUP_DEPTH`]).
    TooLarge(&'static str),
    /// The stride cannot hold meta + header + data.
    StrideTooSmall,
    /// No bucket holds a valid copy.
    NoValidBucket,
    /// No such variable.
    UnknownVariable,
    /// A value is not a number, or does not fit the variable.
    BadValue,
}

impl From<FdtError> for StateError {
    fn from(e: FdtError) -> Self {
        Self::Fdt(e)
    }
}

impl fmt::Display for StateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Fdt(e) => write!(f, "state dtb: {e}"),
            Self::StateNodeNotFound => f.write_str("no barebox state node: no /aliases entry with that name and no /state node"),
            Self::NotBareboxState => f.write_str("the state node is not compatible = \"barebox,state\""),
            Self::MissingProperty(p) => write!(f, "state description lacks the property `{p}`"),
            Self::Unsupported(what) => write!(f, "unsupported barebox state setup: {what} (eyas supports backend-type \"raw\" with backend-storage-type \"direct\", without algo)"),
            Self::UnknownType => f.write_str("a state variable has an unknown type (known: uint8, uint32, enum32, mac, string)"),
            Self::TooLarge(what) => write!(f, "barebox state too large for eyas: {what}"),
            Self::StrideTooSmall => f.write_str("backend-stridesize is smaller than meta + header + data"),
            Self::NoValidBucket => f.write_str("no valid barebox state bucket (all empty or corrupt); barebox would boot with the defaults"),
            Self::UnknownVariable => f.write_str("no such barebox state variable"),
            Self::BadValue => f.write_str("value is not a number that fits the state variable"),
        }
    }
}

impl core::error::Error for StateError {}

fn var_type(s: &str) -> Result<(VarType, Option<usize>), StateError> {
    Ok(match s {
        "uint8" => (VarType::U8, Some(1)),
        "uint32" => (VarType::U32, Some(4)),
        "enum32" => (VarType::Enum32, Some(4)),
        "mac" => (VarType::Mac, Some(6)),
        "string" => (VarType::String, None),
        _ => return Err(StateError::UnknownType),
    })
}

/// `n` big-endian cells starting at cell `at` of `v`, as one number; `None` when they are not
/// all there or do not fit in a `u64` (every number comes from the dtb).
fn cells(v: &[u8], at: usize, n: u32) -> Option<u64> {
    let mut r: u64 = 0;
    for i in 0..n as usize {
        let o = at.checked_add(i)?.checked_mul(4)?;
        let s = v.get(o..o.checked_add(4)?)?;
        if r >> 32 != 0 {
            return None;
        }
        r = (r << 32) | u64::from(u32::from_be_bytes([s[0], s[1], s[2], s[3]]));
    }
    Some(r)
}

impl StateDesc {
    /// Reads the state named `name` (its `/aliases` entry; `None` = `state`) from a dtb.
    pub fn from_dtb(dtb: &[u8], name: Option<&str>) -> Result<Self, StateError> {
        let fdt = Fdt::new(dtb)?;
        let alias = name.unwrap_or("state");
        let mut node = None;
        if let Some(aliases) = fdt.find_path("/aliases")?
            && let Some(path) = aliases.prop_str(alias)?
        {
            node = fdt.find_path(path)?;
        }
        if node.is_none() {
            node = fdt.find_path(&["/", alias].concat_str())?;
        }
        let node = node.ok_or(StateError::StateNodeNotFound)?;
        let compat = node.prop(crate::barebox::COMPATIBLE_PROP)?.unwrap_or(&[]);
        if !compat.split(|&b| b == 0).any(|c| c == b"barebox,state") {
            return Err(StateError::NotBareboxState);
        }
        let magic = node
            .prop_u32("magic")?
            .ok_or(StateError::MissingProperty("magic"))?;
        match node.prop_str("backend-type")? {
            Some("raw") => {}
            Some("dtb") => return Err(StateError::Unsupported("backend-type \"dtb\"")),
            _ => return Err(StateError::Unsupported("backend-type missing or unknown")),
        }
        match node.prop_str("backend-storage-type")? {
            Some("direct") => {}
            Some("circular") | None => {
                return Err(StateError::Unsupported(
                    "backend-storage-type circular (the default on flash)",
                ));
            }
            Some(_) => return Err(StateError::Unsupported("unknown backend-storage-type")),
        }
        if node.prop("algo")?.is_some() {
            return Err(StateError::Unsupported("algo (HMAC-signed state)"));
        }
        let stride = node
            .prop_u32("backend-stridesize")?
            .ok_or(StateError::MissingProperty("backend-stridesize"))?;
        let mut desc = Self {
            magic,
            stride,
            data_len: 0,
            vars: Vec::new(),
        };
        let mut prefix: String<MAX_NAME> = String::new();
        collect_vars(&node, &mut prefix, 0, 1, 1, &mut desc)?;
        if desc.data_len > MAX_DATA {
            return Err(StateError::TooLarge("data area"));
        }
        if (stride as usize) < DIRECT_META_LEN + RAW_HEADER_LEN + desc.data_len {
            return Err(StateError::StrideTooSmall);
        }
        if stride > MAX_STRIDE {
            return Err(StateError::TooLarge("backend-stridesize"));
        }
        Ok(desc)
    }

    /// The variable named `name`.
    #[must_use]
    pub fn var(&self, name: &str) -> Option<&Var> {
        self.vars.iter().find(|v| v.name == name)
    }

    /// The default values (all variables at their `default`, or 0).
    #[must_use]
    pub fn defaults(&self) -> Values {
        let mut data = Vec::new();
        // data_len <= MAX_DATA is checked when the description is built.
        let _ = data.resize(self.data_len, 0);
        let mut v = Values { data };
        for var in &self.vars {
            let _ = write_num(&mut v.data, var, var.default);
        }
        v
    }

    /// Reads a numeric variable.
    #[must_use]
    pub fn get(&self, values: &Values, name: &str) -> Option<u32> {
        let var = self.var(name)?;
        let b = values.data.get(var.offset..var.offset + var.size)?;
        match var.ty {
            VarType::U8 => Some(u32::from(b[0])),
            VarType::U32 | VarType::Enum32 => Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]])),
            VarType::Mac | VarType::String => None,
        }
    }

    /// Sets a numeric variable from its decimal (or `0x` hex) text; `None` resets it to its
    /// default.
    pub fn set(
        &self,
        values: &mut Values,
        name: &str,
        value: Option<&str>,
    ) -> Result<(), StateError> {
        let var = self.var(name).ok_or(StateError::UnknownVariable)?;
        let n = match value {
            None => var.default,
            Some(s) => parse_u32(s).ok_or(StateError::BadValue)?,
        };
        write_num(&mut values.data, var, n)
    }
}

/// The `compatible` property name.
const COMPATIBLE_PROP: &str = "compatible";

trait ConcatStr {
    fn concat_str(&self) -> String<MAX_NAME>;
}
impl ConcatStr for [&str; 2] {
    fn concat_str(&self) -> String<MAX_NAME> {
        let mut s = String::new();
        for p in self {
            if s.push_str(p).is_err() {
                break;
            }
        }
        s
    }
}

fn parse_u32(s: &str) -> Option<u32> {
    let s = s.trim();
    if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        u32::from_str_radix(h, 16).ok()
    } else {
        s.parse().ok()
    }
}

fn write_num(data: &mut [u8], var: &Var, n: u32) -> Result<(), StateError> {
    let dst = data
        .get_mut(var.offset..var.offset + var.size)
        .ok_or(StateError::BadValue)?;
    match var.ty {
        VarType::U8 => dst[0] = u8::try_from(n).map_err(|_| StateError::BadValue)?,
        VarType::U32 | VarType::Enum32 => dst.copy_from_slice(&n.to_le_bytes()),
        VarType::Mac | VarType::String => return Err(StateError::BadValue),
    }
    Ok(())
}

fn collect_vars(
    node: &Node<'_>,
    prefix: &mut String<MAX_NAME>,
    depth: usize,
    acells: u32,
    scells: u32,
    desc: &mut StateDesc,
) -> Result<(), StateError> {
    if depth > MAX_GROUP_DEPTH {
        return Err(StateError::TooLarge("group nesting"));
    }
    let mut result = Ok(());
    node.for_each_child(|child| {
        if result.is_err() {
            return Ok(());
        }
        result = (|| {
            let base =
                core::str::from_utf8(child.base_name()).map_err(|_| StateError::UnknownVariable)?;
            let keep = prefix.len();
            if !prefix.is_empty() {
                prefix
                    .push('.')
                    .map_err(|_| StateError::TooLarge("variable name"))?;
            }
            prefix
                .push_str(base)
                .map_err(|_| StateError::TooLarge("variable name"))?;
            let ac = child.prop_u32("#address-cells")?.unwrap_or(acells);
            let sc = child.prop_u32("#size-cells")?.unwrap_or(scells);
            if let Some(reg) = child.prop("reg")? {
                let ty = child
                    .prop_str("type")?
                    .ok_or(StateError::MissingProperty("type"))?;
                let (ty, fixed) = var_type(ty)?;
                let off = cells(reg, 0, acells).ok_or(StateError::MissingProperty("reg"))?;
                let size = cells(reg, acells as usize, scells)
                    .ok_or(StateError::MissingProperty("reg"))?;
                let offset = usize::try_from(off).map_err(|_| StateError::TooLarge("offset"))?;
                let size = usize::try_from(size).map_err(|_| StateError::TooLarge("size"))?;
                if fixed.is_some_and(|f| f != size)
                    || offset.checked_add(size).is_none_or(|e| e > MAX_DATA)
                {
                    return Err(StateError::TooLarge(
                        "variable outside the data area or wrong size",
                    ));
                }
                let default = child.prop_u32("default")?.unwrap_or(0);
                desc.vars
                    .push(Var {
                        name: prefix.clone(),
                        ty,
                        offset,
                        size,
                        default,
                    })
                    .map_err(|_| StateError::TooLarge("number of variables"))?;
                desc.data_len = desc.data_len.max(offset + size);
            } else {
                collect_vars(&child, prefix, depth + 1, ac, sc, desc)?;
            }
            prefix.truncate(keep);
            Ok(())
        })();
        Ok(())
    })?;
    result
}

/// Encodes `values` as one direct bucket (meta + raw header + data) into `out`; returns its
/// length.
pub fn encode_bucket(
    desc: &StateDesc,
    values: &Values,
    out: &mut [u8],
) -> Result<usize, StateError> {
    let dl = desc.data_len;
    let total = DIRECT_META_LEN + RAW_HEADER_LEN + dl;
    if values.data.len() != dl || out.len() < total {
        return Err(StateError::StrideTooSmall);
    }
    let data_len = u16::try_from(dl).map_err(|_| StateError::TooLarge("data area"))?;
    let written =
        u32::try_from(RAW_HEADER_LEN + dl).map_err(|_| StateError::TooLarge("data area"))?;
    out[0..4].copy_from_slice(&DIRECT_MAGIC.to_le_bytes());
    out[4..8].copy_from_slice(&written.to_le_bytes());
    let h = DIRECT_META_LEN;
    out[h..h + 4].copy_from_slice(&desc.magic.to_le_bytes());
    out[h + 4..h + 6].copy_from_slice(&0u16.to_le_bytes());
    out[h + 6..h + 8].copy_from_slice(&data_len.to_le_bytes());
    out[h + 8..h + 12].copy_from_slice(&crc32(&values.data).to_le_bytes());
    let hcrc = crc32(&out[h..h + 12]);
    out[h + 12..h + 16].copy_from_slice(&hcrc.to_le_bytes());
    out[h + 16..total].copy_from_slice(&values.data);
    Ok(total)
}

/// Why one bucket was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BucketStatus {
    /// Valid.
    Ok,
    /// No direct meta magic ("No meta data header found").
    NoMeta,
    /// Written length does not match this description.
    BadLength,
    /// Header CRC mismatch.
    BadHeaderCrc,
    /// State magic mismatch.
    BadMagic,
    /// Data CRC mismatch.
    BadDataCrc,
}

fn le32(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]])
}

/// Checks one bucket (`bucket` = the bytes at its start: at least the meta and the written
/// length it names), the way dt-utils verifies a direct bucket in the raw format: the meta's
/// written length fits the stride, the header CRC and the state magic match (a description with
/// magic 0 accepts any), `16 + data_len` fits the written length and the data CRC over `data_len`
/// bytes matches. The description's own data length plays no part here (see [`decode_bucket`]).
#[must_use]
pub fn check_bucket(desc: &StateDesc, bucket: &[u8]) -> BucketStatus {
    if bucket.len() < DIRECT_META_LEN || le32(bucket, 0) != DIRECT_MAGIC {
        return BucketStatus::NoMeta;
    }
    let written = le32(bucket, 4) as usize;
    // dt-utils writes the meta only when meta + blob fit the stride.
    if written < RAW_HEADER_LEN
        || DIRECT_META_LEN + written > desc.stride as usize
        || bucket.len() < DIRECT_META_LEN + written
    {
        return BucketStatus::BadLength;
    }
    let h = DIRECT_META_LEN;
    if crc32(&bucket[h..h + 12]) != le32(bucket, h + 12) {
        return BucketStatus::BadHeaderCrc;
    }
    if desc.magic != 0 && le32(bucket, h) != desc.magic {
        return BucketStatus::BadMagic;
    }
    let dl = usize::from(u16::from_le_bytes([bucket[h + 6], bucket[h + 7]]));
    if RAW_HEADER_LEN + dl > written {
        return BucketStatus::BadLength;
    }
    let data = &bucket[h + RAW_HEADER_LEN..h + RAW_HEADER_LEN + dl];
    if crc32(data) != le32(bucket, h + 8) {
        return BucketStatus::BadDataCrc;
    }
    BucketStatus::Ok
}

/// Decodes a valid bucket's values as dt-utils unpacks them: every variable that lies inside the
/// stored data is copied from it; a variable behind the stored data (a bucket written with a
/// shorter description) keeps its default, and bytes between variables are 0.
pub fn decode_bucket(desc: &StateDesc, bucket: &[u8]) -> Result<Values, StateError> {
    if check_bucket(desc, bucket) != BucketStatus::Ok {
        return Err(StateError::NoValidBucket);
    }
    let h = DIRECT_META_LEN;
    let stored = usize::from(u16::from_le_bytes([bucket[h + 6], bucket[h + 7]]));
    let data = &bucket[h + RAW_HEADER_LEN..h + RAW_HEADER_LEN + stored];
    let mut values = Values { data: Vec::new() };
    values
        .data
        .resize(desc.data_len, 0)
        .map_err(|_| StateError::TooLarge("data area"))?;
    for var in &desc.vars {
        let r = var.offset..var.offset + var.size;
        match (data.get(r.clone()), values.data.get_mut(r)) {
            (Some(src), Some(dst)) => dst.copy_from_slice(src),
            (None, _) => {
                let _ = write_num(&mut values.data, var, var.default);
            }
            (Some(_), None) => return Err(StateError::TooLarge("data area")),
        }
    }
    Ok(values)
}

/// A load result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loaded {
    /// The values.
    pub values: Values,
    /// The bucket they came from.
    pub bucket: usize,
    /// Every bucket's status.
    pub status: [BucketStatus; BUCKETS],
}

/// Errors of [`load`].
#[derive(Debug)]
#[non_exhaustive]
pub enum LoadError<E> {
    /// The medium failed.
    Io(E),
    /// The state is invalid.
    State(StateError),
}

/// Errors of [`save`].
#[derive(Debug)]
#[non_exhaustive]
pub enum SaveError<E> {
    /// The medium failed.
    Io(E),
    /// The state is invalid.
    State(StateError),
}

impl<E: fmt::Display> fmt::Display for LoadError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io(e) => write!(f, "reading the barebox state storage failed: {e}"),
            Self::State(e) => e.fmt(f),
        }
    }
}

impl<E: fmt::Display> fmt::Display for SaveError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io(e) => write!(f, "writing the barebox state storage failed: {e}"),
            Self::State(e) => e.fmt(f),
        }
    }
}

impl<E: fmt::Debug + fmt::Display> core::error::Error for LoadError<E> {}
impl<E: fmt::Debug + fmt::Display> core::error::Error for SaveError<E> {}

/// Loads from the first valid bucket (see [`check_bucket`]). `buf` must hold one stride.
pub fn load<S: Storage>(
    desc: &StateDesc,
    st: &mut S,
    buf: &mut [u8],
) -> Result<Loaded, LoadError<S::Error>> {
    let stride = desc.stride as usize;
    if buf.len() < stride || stride < DIRECT_META_LEN + RAW_HEADER_LEN + desc.data_len {
        return Err(LoadError::State(StateError::StrideTooSmall));
    }
    let mut status = [BucketStatus::NoMeta; BUCKETS];
    let mut found: Option<(usize, Values)> = None;
    for (b, s) in status.iter_mut().enumerate() {
        let off = b as u64 * u64::from(desc.stride);
        st.read(off, &mut buf[..DIRECT_META_LEN])
            .map_err(LoadError::Io)?;
        // Read as much as the meta names (bounded by the stride; check_bucket rejects more).
        let written = le32(buf, 4) as usize;
        let len = if le32(buf, 0) == DIRECT_MAGIC {
            DIRECT_META_LEN + written.min(stride - DIRECT_META_LEN)
        } else {
            DIRECT_META_LEN
        };
        st.read(off + DIRECT_META_LEN as u64, &mut buf[DIRECT_META_LEN..len])
            .map_err(LoadError::Io)?;
        *s = check_bucket(desc, &buf[..len]);
        if *s == BucketStatus::Ok && found.is_none() {
            found = Some((
                b,
                decode_bucket(desc, &buf[..len]).map_err(LoadError::State)?,
            ));
        }
    }
    let (bucket, values) = found.ok_or(LoadError::State(StateError::NoValidBucket))?;
    Ok(Loaded {
        values,
        bucket,
        status,
    })
}

/// Saves `values` to all buckets in reverse order (see the module docs); each bucket is written
/// and synced before the next.
/// `buf` must hold one stride.
pub fn save<S: Storage>(
    desc: &StateDesc,
    values: &Values,
    st: &mut S,
    buf: &mut [u8],
) -> Result<(), SaveError<S::Error>> {
    let n = encode_bucket(desc, values, buf).map_err(SaveError::State)?;
    for b in (0..BUCKETS).rev() {
        let off = b as u64 * u64::from(desc.stride);
        if let Some(es) = st.erase_size() {
            if es == 0 || !off.is_multiple_of(es) || !u64::from(desc.stride).is_multiple_of(es) {
                return Err(SaveError::State(StateError::Unsupported(
                    "direct storage on flash whose erase blocks do not match the stride",
                )));
            }
            st.erase(off, u64::from(desc.stride))
                .map_err(SaveError::Io)?;
        }
        st.write(off, &buf[..n]).map_err(SaveError::Io)?;
        st.sync().map_err(SaveError::Io)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_never_overflow() {
        // `#address-cells` comes from the dtb; on a 32-bit target `(at + i) * 4` overflowed.
        let reg = [0u8, 0, 0, 1, 0, 0, 0, 2];
        assert_eq!(cells(&reg, 0, 1), Some(1));
        assert_eq!(cells(&reg, 1, 1), Some(2));
        assert_eq!(cells(&reg, usize::MAX / 2, 1), None);
        assert_eq!(cells(&reg, usize::MAX, 1), None);
        // More cells than a u64 holds: an error, not silently dropped high bits.
        let three = [0u8, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2];
        assert_eq!(cells(&three, 0, 3), None);
        assert_eq!(cells(&three, 1, 2), Some(2));
    }
}
