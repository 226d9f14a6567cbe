//! A small reader of the kernel's BTF type information (`/sys/kernel/btf/vmlinux`), so the
//! loader can ask the running kernel for `struct sk_buff` field offsets, the names of
//! `enum skb_drop_reason` and the arguments of raw tracepoints instead of hard-coding them for
//! one kernel version. aya-obj parses BTF too, but keeps that API private to the crate.

use std::collections::HashMap;
use std::io;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// Where the running kernel publishes its own BTF.
pub const VMLINUX: &str = "/sys/kernel/btf/vmlinux";

const MAGIC: u16 = 0xeb9f;
const HEADER_LEN: usize = 24;
// Real modifier chains are a few levels deep and real anonymous members a few dozen; the limits
// turn a cyclic or deliberately branching (malformed) file into an error instead of a hang.
const MAX_DEPTH: usize = 32;
const MAX_MEMBER_VISITS: usize = 1 << 20;
// BTF records no pointer size; the kernels tracer runs on (x86_64, aarch64) use 8 bytes.
const POINTER_SIZE: u32 = 8;

const INT: u8 = 1;
const PTR: u8 = 2;
const ARRAY: u8 = 3;
const STRUCT: u8 = 4;
const UNION: u8 = 5;
const ENUM: u8 = 6;
const FWD: u8 = 7;
const TYPEDEF: u8 = 8;
const VOLATILE: u8 = 9;
const CONST: u8 = 10;
const RESTRICT: u8 = 11;
const FUNC: u8 = 12;
const FUNC_PROTO: u8 = 13;
const VAR: u8 = 14;
const DATASEC: u8 = 15;
const FLOAT: u8 = 16;
const DECL_TAG: u8 = 17;
const TYPE_TAG: u8 = 18;
const ENUM64: u8 = 19;

/// What went wrong reading BTF or finding something in it.
#[derive(Debug, thiserror::Error)]
pub enum BtfError {
    #[error("reading BTF from {0}")]
    Read(PathBuf, #[source] io::Error),
    #[error("parsing BTF from {0}")]
    InFile(PathBuf, #[source] Box<Self>),
    #[error("not little-endian BTF: magic {0:#06x}, expected 0xeb9f")]
    BadMagic(u16),
    #[error("malformed BTF header: its sections do not fit in the {0}-byte file")]
    BadHeader(usize),
    #[error("malformed BTF: type {0} runs past the end of the type section")]
    Truncated(u32),
    #[error("malformed BTF: type {id} has unknown kind {kind}")]
    UnknownKind { kind: u8, id: u32 },
    #[error("malformed BTF: string offset {0} is out of range, unterminated or not UTF-8")]
    BadString(u32),
    #[error("malformed BTF: reference to type {0}, which does not exist")]
    BadTypeId(u32),
    #[error("malformed BTF: type {0} nests too deep or too wide (a cycle?)")]
    TooDeep(u32),
    /// What kind of type was looked for (struct, enum, typedef) and its name.
    #[error("no {0} {1} in BTF")]
    NotFound(&'static str, String),
    /// The struct (and path so far) that was searched, and the member not found in it.
    #[error("{0} has no member {1}")]
    NoMember(String, String),
    #[error("{0} is not a struct or union, so it has no members")]
    NotAggregate(String),
    #[error("{0} is a bitfield; its offset is not a whole byte")]
    Bitfield(String),
    #[error("{0} has a type of kind {1}, which has no size")]
    NoSize(String, u8),
    #[error("offset or size of {0} does not fit in 32 bits")]
    Overflow(String),
    #[error("typedef {0} is not a pointer to a function prototype")]
    NotFnPointer(String),
    #[error("the prototype of typedef {0} has unnamed parameters and no named twin")]
    UnnamedParams(String),
}

#[derive(Clone, Copy, Default)]
struct Type {
    kind: u8,
    kflag: bool,
    vlen: usize,
    name_off: u32,
    #[allow(
        clippy::struct_field_names,
        reason = "the name BTF's own documentation gives it"
    )]
    size_or_type: u32,
    /// Absolute offset of the kind-specific data that follows the common 12 bytes.
    data: usize,
}

/// Parsed BTF: the raw bytes, one entry per type id (0 is void) and a name index.
pub struct Btf {
    data: Vec<u8>,
    strings: Range<usize>,
    types: Vec<Type>,
    /// First id of each (kind, name) among the kinds looked up by name. FWD is not indexed, so
    /// a forward declaration never shadows the complete definition.
    index: HashMap<(u8, String), u32>,
}

fn u32_at(data: &[u8], at: usize) -> Option<u32> {
    let bytes = data.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes(bytes.try_into().ok()?))
}

fn str_at<'a>(data: &'a [u8], strings: &Range<usize>, off: u32) -> Result<&'a str, BtfError> {
    let bad = || BtfError::BadString(off);
    let tail = data
        .get(strings.start + off as usize..strings.end)
        .ok_or_else(bad)?;
    let (name, _) = tail.split_at(tail.iter().position(|&b| b == 0).ok_or_else(bad)?);
    std::str::from_utf8(name).map_err(|_| bad())
}

impl Btf {
    /// Reads and parses a BTF file, usually [`VMLINUX`]; errors name the file.
    pub fn from_file(path: &Path) -> Result<Btf, BtfError> {
        let data = std::fs::read(path).map_err(|e| BtfError::Read(path.to_owned(), e))?;
        Btf::parse(data).map_err(|e| BtfError::InFile(path.to_owned(), Box::new(e)))
    }

    /// Parses raw BTF (header, type section, string section) and indexes its named types.
    pub fn parse(data: Vec<u8>) -> Result<Btf, BtfError> {
        let magic = u32_at(&data, 0).map_or(0, |w| w as u16);
        if magic != MAGIC {
            return Err(BtfError::BadMagic(magic));
        }
        let field = |i: usize| u32_at(&data, 4 + 4 * i).map(|v| v as usize);
        let section = |i: usize| {
            let start = field(0)
                .filter(|&h| h >= HEADER_LEN)?
                .checked_add(field(i)?)?;
            let end = start.checked_add(field(i + 1)?)?;
            (end <= data.len()).then_some(start..end)
        };
        let (Some(type_sec), Some(strings)) = (section(1), section(3)) else {
            return Err(BtfError::BadHeader(data.len()));
        };

        let mut types = vec![Type::default()];
        let type_bytes = data.get(..type_sec.end).unwrap_or_default();
        let mut pos = type_sec.start;
        while pos < type_sec.end {
            let id = types.len() as u32;
            let word = |at: usize| u32_at(type_bytes, pos + at);
            let (Some(name_off), Some(info), Some(size_or_type)) = (word(0), word(4), word(8))
            else {
                return Err(BtfError::Truncated(id));
            };
            let (kind, vlen) = (((info >> 24) & 0x1f) as u8, (info & 0xffff) as usize);
            let extra = match kind {
                PTR | FWD | TYPEDEF | VOLATILE | CONST | RESTRICT | FUNC | FLOAT | TYPE_TAG => 0,
                INT | VAR | DECL_TAG => 4,
                ARRAY => 12,
                STRUCT | UNION | DATASEC | ENUM64 => vlen * 12,
                ENUM | FUNC_PROTO => vlen * 8,
                _ => return Err(BtfError::UnknownKind { kind, id }),
            };
            let (data, next) = (pos + 12, pos + 12 + extra);
            if next > type_sec.end {
                return Err(BtfError::Truncated(id));
            }
            let kflag = info >> 31 == 1;
            types.push(Type {
                kind,
                kflag,
                vlen,
                name_off,
                size_or_type,
                data,
            });
            pos = next;
        }

        let mut index = HashMap::new();
        for (id, t) in types.iter().enumerate() {
            let looked_up = matches!(t.kind, STRUCT | UNION | ENUM | ENUM64 | TYPEDEF | FUNC);
            if looked_up && t.name_off != 0 {
                let name = str_at(&data, &strings, t.name_off)?;
                index.entry((t.kind, name.to_owned())).or_insert(id as u32);
            }
        }
        Ok(Btf {
            data,
            strings,
            types,
            index,
        })
    }

    /// Byte offset of a member reached by `path` from `struct_name` (struct or union), e.g.
    /// `("sk_buff", &["dev"])`, `("net_device", &["nd_net", "net"])`, `("net", &["ns", "inum"])`,
    /// `("sock", &["__sk_common", "skc_net", "net"])`. Members inside anonymous structs/unions are
    /// found as if they were direct members (the kernel nests many: sk_buff's `dev`,
    /// `mac_header`, `protocol` sit in anonymous unions/struct_groups), with their offsets added.
    /// Each intermediate member's type is resolved through typedef/const/volatile/restrict/type_tag
    /// to a struct or union before descending. Errors for bitfield members (offset not a whole byte).
    pub fn member_offset(&self, struct_name: &str, path: &[&str]) -> Result<u32, BtfError> {
        self.resolve(struct_name, path).map(|(offset, _, _)| offset)
    }

    /// Size in bytes of that member's type (resolved through modifiers; pointers are 8 on x86_64/aarch64).
    pub fn member_size(&self, struct_name: &str, path: &[&str]) -> Result<u32, BtfError> {
        let (_, mut id, described) = self.resolve(struct_name, path)?;
        let mut count = 1u32;
        let overflow = || BtfError::Overflow(described.clone());
        for _ in 0..MAX_DEPTH {
            let (_, t) = self.strip(id)?;
            match t.kind {
                INT | STRUCT | UNION | ENUM | ENUM64 | FLOAT => {
                    return t.size_or_type.checked_mul(count).ok_or_else(overflow);
                }
                PTR => return POINTER_SIZE.checked_mul(count).ok_or_else(overflow),
                ARRAY => {
                    let elements = self.word(t.data + 8)?;
                    count = count.checked_mul(elements).ok_or_else(overflow)?;
                    id = self.word(t.data)?;
                }
                kind => return Err(BtfError::NoSize(described, kind)),
            }
        }
        Err(BtfError::TooDeep(id))
    }

    /// The type id of the named struct, as programs name a type to the kernel.
    pub fn struct_id(&self, name: &str) -> Result<u32, BtfError> {
        self.named(&[STRUCT], name, "struct")
    }

    /// The type id of the named function (FUNC), as programs name a kernel function to call.
    pub fn func_id(&self, name: &str) -> Result<u32, BtfError> {
        self.named(&[FUNC], name, "function")
    }

    /// Name and value of each enumerator of the named enum (ENUM or ENUM64), in BTF order.
    /// Negative values of signed enums come back two's-complement (`i64 as u64`).
    pub fn enum_values(&self, enum_name: &str) -> Result<Vec<(String, u64)>, BtfError> {
        let t = self.ty(self.named(&[ENUM, ENUM64], enum_name, "enum")?)?;
        let entry = if t.kind == ENUM { 8 } else { 12 };
        (0..t.vlen)
            .map(|i| {
                let at = t.data + i * entry;
                let low = self.word(at + 4)?;
                let value = match (t.kind, t.kflag) {
                    (ENUM, true) => i64::from(low as i32) as u64,
                    (ENUM, false) => u64::from(low),
                    _ => u64::from(low) | u64::from(self.word(at + 8)?) << 32,
                };
                Ok((self.name(self.word(at)?)?.to_owned(), value))
            })
            .collect()
    }

    /// Parameter names of the function prototype a typedef points to (through a PTR), e.g.
    /// `btf_trace_kfree_skb` -> `["__data", "skb", "location", "reason", "rx_sk"]`
    /// (raw tracepoint programs see these args without the leading `__data`).
    ///
    /// The kernel's `btf_trace_<event>` typedefs come from a macro that drops parameter names,
    /// so when names are missing they come from `__bpf_trace_<event>`, the function the kernel
    /// builds for the same event, provided its parameter types are the same.
    pub fn typedef_fn_params(&self, typedef_name: &str) -> Result<Vec<String>, BtfError> {
        let (_, ptr) = self.strip(self.named(&[TYPEDEF], typedef_name, "typedef")?)?;
        let not_fn = || BtfError::NotFnPointer(typedef_name.to_owned());
        if ptr.kind != PTR {
            return Err(not_fn());
        }
        let params = self.proto_params(ptr.size_or_type)?.ok_or_else(not_fn)?;
        let all_named = |p: &[(String, u32)]| p.iter().all(|(name, _)| !name.is_empty());
        if all_named(&params) {
            return Ok(params.into_iter().map(|(name, _)| name).collect());
        }
        if let Some(event) = typedef_name.strip_prefix("btf_trace_")
            && let Some(&func) = self.index.get(&(FUNC, format!("__bpf_trace_{event}")))
            && let Some(twin) = self.proto_params(self.ty(func)?.size_or_type)?
            && twin.iter().map(|p| p.1).eq(params.iter().map(|p| p.1))
            && all_named(&twin)
        {
            return Ok(twin.into_iter().map(|(name, _)| name).collect());
        }
        Err(BtfError::UnnamedParams(typedef_name.to_owned()))
    }

    /// The parameter types of the function prototype a typedef points to, written as C does
    /// ("struct sk_buff *", "void *", "enum skb_drop_reason"), for prototypes whose parameters
    /// have no names (the `btf_trace_<event>` typedefs of kernels that also lack the
    /// `__bpf_trace_<event>` twin, such as 5.10).
    pub fn typedef_fn_param_types(&self, typedef_name: &str) -> Result<Vec<String>, BtfError> {
        let (_, ptr) = self.strip(self.named(&[TYPEDEF], typedef_name, "typedef")?)?;
        let not_fn = || BtfError::NotFnPointer(typedef_name.to_owned());
        if ptr.kind != PTR {
            return Err(not_fn());
        }
        let params = self.proto_params(ptr.size_or_type)?.ok_or_else(not_fn)?;
        params.iter().map(|(_, id)| self.c_type(*id)).collect()
    }

    /// A type as C writes it, modifiers left out: "struct sk_buff *", "enum x", "void *".
    fn c_type(&self, id: u32) -> Result<String, BtfError> {
        let (id, t) = self.strip(id)?;
        if id == 0 {
            return Ok("void".into());
        }
        let name = self.name(t.name_off)?;
        Ok(match t.kind {
            PTR => format!("{} *", self.c_type(t.size_or_type)?),
            STRUCT => format!("struct {name}"),
            UNION => format!("union {name}"),
            ENUM | ENUM64 => format!("enum {name}"),
            _ => name.to_owned(),
        })
    }

    fn ty(&self, id: u32) -> Result<&Type, BtfError> {
        self.types.get(id as usize).ok_or(BtfError::BadTypeId(id))
    }

    fn word(&self, at: usize) -> Result<u32, BtfError> {
        // Every type's data was bounds-checked by `parse`, so this only fails on a bug.
        u32_at(&self.data, at).ok_or(BtfError::Truncated(0))
    }

    fn name(&self, off: u32) -> Result<&str, BtfError> {
        str_at(&self.data, &self.strings, off)
    }

    /// The lowest id among `kinds` with that name: the first complete definition.
    fn named(&self, kinds: &[u8], name: &str, what: &'static str) -> Result<u32, BtfError> {
        let ids = kinds
            .iter()
            .filter_map(|&k| self.index.get(&(k, name.to_owned())));
        let not_found = || BtfError::NotFound(what, name.to_owned());
        ids.min().copied().ok_or_else(not_found)
    }

    /// Follows typedef/const/volatile/restrict/type_tag to the type they qualify.
    fn strip(&self, mut id: u32) -> Result<(u32, &Type), BtfError> {
        for _ in 0..MAX_DEPTH {
            let t = self.ty(id)?;
            match t.kind {
                TYPEDEF | VOLATILE | CONST | RESTRICT | TYPE_TAG => id = t.size_or_type,
                _ => return Ok((id, t)),
            }
        }
        Err(BtfError::TooDeep(id))
    }

    /// Names and type ids of the parameters, or None if `id` is not a function prototype.
    fn proto_params(&self, id: u32) -> Result<Option<Vec<(String, u32)>>, BtfError> {
        let (_, proto) = self.strip(id)?;
        if proto.kind != FUNC_PROTO {
            return Ok(None);
        }
        let param = |at: usize| Ok((self.name(self.word(at)?)?.to_owned(), self.word(at + 4)?));
        (0..proto.vlen)
            .map(|i| param(proto.data + i * 8))
            .collect::<Result<_, _>>()
            .map(Some)
    }

    /// Byte offset, type id and a description ("struct sock.__sk_common") of a member path.
    fn resolve(&self, struct_name: &str, path: &[&str]) -> Result<(u32, u32, String), BtfError> {
        let mut id = self.named(&[STRUCT, UNION], struct_name, "struct or union")?;
        let kind = self.ty(id)?.kind;
        let keyword = if kind == UNION { "union" } else { "struct" };
        let mut described = format!("{keyword} {struct_name}");
        let mut bits = 0u64;
        for member in path {
            let (agg, t) = self.strip(id)?;
            if !matches!(t.kind, STRUCT | UNION) {
                return Err(BtfError::NotAggregate(described));
            }
            let found = self.find_member(agg, member)?;
            let missing = || BtfError::NoMember(described.clone(), (*member).to_owned());
            let (type_id, offset, bitfield) = found.ok_or_else(missing)?;
            described = format!("{described}.{member}");
            if bitfield != 0 || offset % 8 != 0 {
                return Err(BtfError::Bitfield(described));
            }
            bits += offset;
            id = type_id;
        }
        match u32::try_from(bits / 8) {
            Ok(offset) => Ok((offset, id, described)),
            Err(_) => Err(BtfError::Overflow(described)),
        }
    }

    /// Finds `name` among the members of struct/union `id` and of its anonymous members, whose
    /// offsets add up: (type id, bit offset, bitfield size).
    fn find_member(&self, id: u32, name: &str) -> Result<Option<(u32, u64, u32)>, BtfError> {
        // A worklist with a budget rather than recursion, so a cyclic or branching malformed file
        // ends in an error instead of a stack overflow or a hang.
        let (mut pending, mut visits) = (vec![(id, 0u64)], 0);
        while let Some((id, base)) = pending.pop() {
            let t = self.ty(id)?;
            visits += 1 + t.vlen;
            if visits > MAX_MEMBER_VISITS {
                return Err(BtfError::TooDeep(id));
            }
            for at in (0..t.vlen).map(|i| t.data + i * 12) {
                let (name_off, type_id, offset) =
                    (self.word(at)?, self.word(at + 4)?, self.word(at + 8)?);
                let bits = if t.kflag { offset & 0xff_ffff } else { offset };
                let bitfield = if t.kflag { offset >> 24 } else { 0 };
                let bits = base + u64::from(bits);
                if name_off != 0 {
                    if self.name(name_off)? == name {
                        return Ok(Some((type_id, bits, bitfield)));
                    }
                } else if let (inner, STRUCT | UNION) =
                    self.strip(type_id).map(|(i, t)| (i, t.kind))?
                {
                    pending.push((inner, bits));
                }
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests;
