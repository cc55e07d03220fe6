//! A minimal, allocation-free flattened device tree (dtb) reader: enough to find the
//! `barebox,state` node and walk its variable nodes. Every access is bounds-checked; malformed
//! input gives [`FdtError`], never a panic.

use core::fmt;

/// FDT header magic.
pub const FDT_MAGIC: u32 = 0xd00d_feed;
const FDT_BEGIN_NODE: u32 = 1;
const FDT_END_NODE: u32 = 2;
const FDT_PROP: u32 = 3;
const FDT_NOP: u32 = 4;
const FDT_END: u32 = 9;
/// Size of the fixed header fields we read.
pub const HEADER_LEN: usize = 40;
/// Deepest nesting followed while skipping subtrees.
pub const MAX_DEPTH: usize = 64;

/// Malformed dtb.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FdtError {
    /// Too short for a header, or a bad magic.
    BadHeader,
    /// An offset or length points outside the blob.
    OutOfBounds,
    /// An unknown token or a broken structure.
    BadStructure,
    /// Nesting deeper than [`MAX_DEPTH`].
    TooDeep,
}

impl fmt::Display for FdtError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::BadHeader => "not a device tree blob (bad header or magic 0xd00dfeed missing)",
            Self::OutOfBounds => "device tree blob is truncated or has offsets outside the blob",
            Self::BadStructure => "device tree blob has a malformed structure block",
            Self::TooDeep => "device tree nesting is too deep",
        })
    }
}

fn be32(b: &[u8], off: usize) -> Result<u32, FdtError> {
    let s = b
        .get(off..off.checked_add(4).ok_or(FdtError::OutOfBounds)?)
        .ok_or(FdtError::OutOfBounds)?;
    Ok(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

fn align4(x: usize) -> Option<usize> {
    x.checked_add(3).map(|v| v & !3)
}

/// A parsed dtb.
#[derive(Debug, Clone, Copy)]
pub struct Fdt<'a> {
    structs: &'a [u8],
    strings: &'a [u8],
}

/// A property.
#[derive(Debug, Clone, Copy)]
pub struct Prop<'a> {
    /// Property name.
    pub name: &'a [u8],
    /// Raw value.
    pub value: &'a [u8],
}

/// A node: its name and where its contents start in the structure block.
#[derive(Debug, Clone, Copy)]
pub struct Node<'a> {
    fdt: Fdt<'a>,
    /// Node name including any `@unit`.
    pub name: &'a [u8],
    body: usize,
}

enum Token<'a> {
    Begin(&'a [u8], usize),
    End,
    Prop(Prop<'a>),
    Finish,
}

impl<'a> Fdt<'a> {
    /// Checks the header and locates the structure and strings blocks.
    pub fn new(blob: &'a [u8]) -> Result<Self, FdtError> {
        if blob.len() < HEADER_LEN || be32(blob, 0)? != FDT_MAGIC {
            return Err(FdtError::BadHeader);
        }
        let total = be32(blob, 4)? as usize;
        let blob = blob.get(..total).ok_or(FdtError::OutOfBounds)?;
        let off_struct = be32(blob, 8)? as usize;
        let off_strings = be32(blob, 12)? as usize;
        let size_strings = be32(blob, 32)? as usize;
        let size_struct = be32(blob, 36)? as usize;
        let structs = blob
            .get(
                off_struct
                    ..off_struct
                        .checked_add(size_struct)
                        .ok_or(FdtError::OutOfBounds)?,
            )
            .ok_or(FdtError::OutOfBounds)?;
        let strings = blob
            .get(
                off_strings
                    ..off_strings
                        .checked_add(size_strings)
                        .ok_or(FdtError::OutOfBounds)?,
            )
            .ok_or(FdtError::OutOfBounds)?;
        Ok(Self { structs, strings })
    }

    fn token(&self, pos: usize) -> Result<(Token<'a>, usize), FdtError> {
        let mut pos = pos;
        loop {
            let t = be32(self.structs, pos)?;
            pos += 4;
            match t {
                FDT_NOP => {}
                FDT_BEGIN_NODE => {
                    let rest = self.structs.get(pos..).ok_or(FdtError::OutOfBounds)?;
                    let n = rest
                        .iter()
                        .position(|&b| b == 0)
                        .ok_or(FdtError::OutOfBounds)?;
                    let name = &rest[..n];
                    let next = align4(pos + n + 1).ok_or(FdtError::OutOfBounds)?;
                    return Ok((Token::Begin(name, next), next));
                }
                FDT_END_NODE => return Ok((Token::End, pos)),
                FDT_PROP => {
                    let len = be32(self.structs, pos)? as usize;
                    let nameoff = be32(self.structs, pos + 4)? as usize;
                    let vstart = pos + 8;
                    let value = self
                        .structs
                        .get(vstart..vstart.checked_add(len).ok_or(FdtError::OutOfBounds)?)
                        .ok_or(FdtError::OutOfBounds)?;
                    let srest = self.strings.get(nameoff..).ok_or(FdtError::OutOfBounds)?;
                    let sn = srest
                        .iter()
                        .position(|&b| b == 0)
                        .ok_or(FdtError::OutOfBounds)?;
                    let next = align4(vstart + len).ok_or(FdtError::OutOfBounds)?;
                    return Ok((
                        Token::Prop(Prop {
                            name: &srest[..sn],
                            value,
                        }),
                        next,
                    ));
                }
                FDT_END => return Ok((Token::Finish, pos)),
                _ => return Err(FdtError::BadStructure),
            }
        }
    }

    /// The root node.
    pub fn root(&self) -> Result<Node<'a>, FdtError> {
        match self.token(0)? {
            (Token::Begin(name, body), _) => Ok(Node {
                fdt: *self,
                name,
                body,
            }),
            _ => Err(FdtError::BadStructure),
        }
    }

    /// The node at an absolute path like `/state` or `/a/b@1`.
    pub fn find_path(&self, path: &str) -> Result<Option<Node<'a>>, FdtError> {
        let mut node = self.root()?;
        for comp in path.split('/').filter(|c| !c.is_empty()) {
            match node.child(comp)? {
                Some(c) => node = c,
                None => return Ok(None),
            }
        }
        Ok(Some(node))
    }
}

impl<'a> Node<'a> {
    /// The name without its `@unit` part.
    #[must_use]
    pub fn base_name(&self) -> &'a [u8] {
        self.name.split(|&b| b == b'@').next().unwrap_or(self.name)
    }

    /// Calls `f` for every property, in order.
    pub fn for_each_prop(&self, mut f: impl FnMut(Prop<'a>)) -> Result<(), FdtError> {
        let mut pos = self.body;
        loop {
            match self.fdt.token(pos)? {
                (Token::Prop(p), next) => {
                    f(p);
                    pos = next;
                }
                (Token::Begin(..) | Token::End, _) => return Ok(()),
                (Token::Finish, _) => return Err(FdtError::BadStructure),
            }
        }
    }

    /// The value of property `name`.
    pub fn prop(&self, name: &str) -> Result<Option<&'a [u8]>, FdtError> {
        let mut found = None;
        self.for_each_prop(|p| {
            if p.name == name.as_bytes() {
                found = Some(p.value);
            }
        })?;
        Ok(found)
    }

    /// A string property (without its NUL).
    pub fn prop_str(&self, name: &str) -> Result<Option<&'a str>, FdtError> {
        Ok(self.prop(name)?.and_then(|v| {
            let v = v.strip_suffix(&[0]).unwrap_or(v);
            core::str::from_utf8(v.split(|&b| b == 0).next().unwrap_or(v)).ok()
        }))
    }

    /// A single-cell (u32) property.
    pub fn prop_u32(&self, name: &str) -> Result<Option<u32>, FdtError> {
        Ok(self.prop(name)?.and_then(|v| be32(v, 0).ok()))
    }

    /// Calls `f` for every direct child, in order.
    pub fn for_each_child(
        &self,
        mut f: impl FnMut(Self) -> Result<(), FdtError>,
    ) -> Result<(), FdtError> {
        let mut pos = self.body;
        loop {
            match self.fdt.token(pos)? {
                (Token::Prop(_), next) => pos = next,
                (Token::Begin(name, body), _) => {
                    f(Node {
                        fdt: self.fdt,
                        name,
                        body,
                    })?;
                    pos = skip_subtree(&self.fdt, body)?;
                }
                (Token::End, _) => return Ok(()),
                (Token::Finish, _) => return Err(FdtError::BadStructure),
            }
        }
    }

    /// The direct child named `name` (exact, or by base name when `name` has no `@`).
    pub fn child(&self, name: &str) -> Result<Option<Self>, FdtError> {
        let mut found = None;
        self.for_each_child(|c| {
            if found.is_none()
                && (c.name == name.as_bytes()
                    || (!name.contains('@') && c.base_name() == name.as_bytes()))
            {
                found = Some(c);
            }
            Ok(())
        })?;
        Ok(found)
    }
}

/// Position right after the END_NODE that closes the node whose body starts at `body`.
fn skip_subtree(fdt: &Fdt<'_>, body: usize) -> Result<usize, FdtError> {
    let mut depth = 1usize;
    let mut pos = body;
    loop {
        let (t, next) = fdt.token(pos)?;
        pos = next;
        match t {
            Token::Begin(..) => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(FdtError::TooDeep);
                }
            }
            Token::End => {
                depth -= 1;
                if depth == 0 {
                    return Ok(pos);
                }
            }
            Token::Prop(_) => {}
            Token::Finish => return Err(FdtError::BadStructure),
        }
    }
}
