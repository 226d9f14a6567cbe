//! The class tables as the kernel programs see them: a class per port and protocol, and a
//! class per IP protocol, plus the names user space prints for each class number.

use tracer_common::{
    classes::{
        CLASS_MALFORMED, CLASS_OTHER, MAX_CLASSES, PORT_TABLE_LEN, PROTO_TABLE_LEN, PortClasses,
        classify,
    },
    packet::Headers,
};

/// Class names by number, and the two lookup tables the programs read.
#[derive(Clone, Debug)]
pub struct ClassTable {
    names: Vec<String>,
    ports: Vec<PortClasses>,
    protos: Vec<u8>,
    flags: Vec<u8>,
}

impl ClassTable {
    /// A table with only `other` and `malformed`; add classes with [`ClassTable::add_class`].
    pub fn new() -> Self {
        let mut names = vec![String::new(); 2];
        names[CLASS_OTHER as usize] = "other".into();
        names[CLASS_MALFORMED as usize] = "malformed".into();
        ClassTable {
            names,
            ports: vec![PortClasses::default(); PORT_TABLE_LEN as usize],
            protos: vec![CLASS_OTHER; PROTO_TABLE_LEN as usize],
            flags: vec![0; MAX_CLASSES],
        }
    }

    /// The number of an existing class of that name, or a new one. `None` when the table is full.
    pub fn add_class(&mut self, name: &str) -> Option<u8> {
        if let Some(i) = self.id(name) {
            return Some(i);
        }
        if self.names.len() >= MAX_CLASSES {
            return None;
        }
        self.names.push(name.to_string());
        Some((self.names.len() - 1) as u8)
    }

    /// Gives ports `lo..=hi` of `proto` the class `class`, replacing what was there.
    pub fn set_ports(&mut self, proto: u8, lo: u16, hi: u16, class: u8) {
        for port in lo..=hi {
            self.ports[port as usize].set(proto, class);
        }
    }

    pub fn set_protocol(&mut self, proto: u8, class: u8) {
        self.protos[proto as usize] = class;
    }

    /// Marks a class (`CLASS_FLAG_VXLAN`: its packets carry an inner frame to decode).
    pub fn set_flags(&mut self, class: u8, flags: u8) {
        self.flags[class as usize] |= flags;
    }

    pub fn flags(&self) -> &[u8] {
        &self.flags
    }

    /// The classes that have `flag`, a bit per class number, as the kernel programs take them.
    pub fn flagged(&self, flag: u8) -> u64 {
        self.flags
            .iter()
            .enumerate()
            .filter(|(_, f)| *f & flag != 0)
            .fold(0, |set, (class, _)| set | 1 << class)
    }

    pub fn names(&self) -> &[String] {
        &self.names
    }

    pub fn name(&self, class: u8) -> &str {
        self.names.get(class as usize).map_or("?", String::as_str)
    }

    pub fn id(&self, name: &str) -> Option<u8> {
        self.names.iter().position(|n| n == name).map(|i| i as u8)
    }

    pub fn len(&self) -> u32 {
        self.names.len() as u32
    }

    pub fn is_empty(&self) -> bool {
        false
    }

    pub fn ports(&self) -> &[PortClasses] {
        &self.ports
    }

    pub fn protos(&self) -> &[u8] {
        &self.protos
    }

    /// Classifies parsed headers exactly as the kernel programs do.
    pub fn classify(&self, h: &Headers) -> u8 {
        classify(
            h.seen(),
            |p| self.ports[p as usize],
            |p| self.protos[p as usize],
        )
    }
}

impl Default for ClassTable {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use tracer_common::classes::{CLASS_FLAG_PEER, CLASS_FLAG_VXLAN};

    use super::ClassTable;

    #[test]
    fn flagged_classes_are_the_bits_of_their_numbers() {
        let mut t = ClassTable::new();
        let vxlan = t.add_class("calico-vxlan").unwrap();
        let bgp = t.add_class("kube-router-bgp").unwrap();
        t.add_class("kube-apiserver").unwrap();
        t.set_flags(vxlan, CLASS_FLAG_VXLAN | CLASS_FLAG_PEER);
        t.set_flags(bgp, CLASS_FLAG_PEER);
        assert_eq!(t.flagged(CLASS_FLAG_VXLAN), 1 << vxlan);
        assert_eq!(t.flagged(CLASS_FLAG_PEER), 1 << vxlan | 1 << bgp);
        // The last class a profile may have is the 64th bit.
        let mut full = ClassTable::new();
        let mut last = 0;
        while let Some(c) = full.add_class(&format!("c{}", full.names().len())) {
            last = c;
        }
        full.set_flags(last, CLASS_FLAG_PEER);
        assert_eq!(full.flagged(CLASS_FLAG_PEER), 1 << 63);
    }
}
