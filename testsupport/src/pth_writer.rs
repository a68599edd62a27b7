//! A minimal writer of torch-shaped `.pth` files (STORED zip + protocol 2 pickle), shared by
//! the hostile-input tests and the shard split → merge property test.

/// One zip member. `method` and `flags` go into both headers unchanged.
pub struct Member {
    pub name: String,
    pub data: Vec<u8>,
    pub method: u16,
    pub flags: u16,
}

pub fn member(name: &str, data: &[u8]) -> Member {
    Member {
        name: name.into(),
        data: data.to_vec(),
        method: 0,
        flags: 0,
    }
}

/// A minimal zip writer. With `zip64`, the central directory saturates sizes and offsets to
/// 0xffffffff and carries the real values in ZIP64 extra fields, as large torch files do.
pub fn write_zip(members: &[Member], zip64: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for m in members {
        let offset = out.len() as u64;
        let size = m.data.len() as u64;
        out.extend(0x0403_4b50u32.to_le_bytes());
        out.extend(20u16.to_le_bytes());
        out.extend(m.flags.to_le_bytes());
        out.extend(m.method.to_le_bytes());
        out.extend([0u8; 8]); // time, date, crc
        out.extend((size as u32).to_le_bytes());
        out.extend((size as u32).to_le_bytes());
        out.extend((m.name.len() as u16).to_le_bytes());
        out.extend(0u16.to_le_bytes());
        out.extend(m.name.as_bytes());
        out.extend(&m.data);

        let extra: Vec<u8> = match zip64 {
            true => [
                1u16.to_le_bytes().as_slice(),
                &24u16.to_le_bytes(),
                &size.to_le_bytes(),
                &size.to_le_bytes(),
                &offset.to_le_bytes(),
            ]
            .concat(),
            false => Vec::new(),
        };
        let small = |v: u64| if zip64 { 0xffff_ffffu32 } else { v as u32 };
        central.extend(0x0201_4b50u32.to_le_bytes());
        central.extend([45, 0, 45, 0]);
        central.extend(m.flags.to_le_bytes());
        central.extend(m.method.to_le_bytes());
        central.extend([0u8; 8]);
        central.extend(small(size).to_le_bytes());
        central.extend(small(size).to_le_bytes());
        central.extend((m.name.len() as u16).to_le_bytes());
        central.extend((extra.len() as u16).to_le_bytes());
        central.extend([0u8; 6]); // comment length, disk, internal attributes
        central.extend(0u32.to_le_bytes());
        central.extend(small(offset).to_le_bytes());
        central.extend(m.name.as_bytes());
        central.extend(&extra);
    }
    let cd_offset = out.len() as u64;
    let cd_size = central.len() as u64;
    let count = members.len() as u64;
    out.extend(central);
    if zip64 {
        let record = out.len() as u64;
        out.extend(0x0606_4b50u32.to_le_bytes());
        out.extend(44u64.to_le_bytes());
        out.extend([45, 0, 45, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        out.extend(count.to_le_bytes());
        out.extend(count.to_le_bytes());
        out.extend(cd_size.to_le_bytes());
        out.extend(cd_offset.to_le_bytes());
        out.extend(0x0706_4b50u32.to_le_bytes());
        out.extend(0u32.to_le_bytes());
        out.extend(record.to_le_bytes());
        out.extend(1u32.to_le_bytes());
    }
    let (count16, size32, offset32) = match zip64 {
        true => (0xffff, 0xffff_ffff, 0xffff_ffff),
        false => (count as u16, cd_size as u32, cd_offset as u32),
    };
    out.extend(0x0605_4b50u32.to_le_bytes());
    out.extend([0u8; 4]);
    out.extend(count16.to_le_bytes());
    out.extend(count16.to_le_bytes());
    out.extend(size32.to_le_bytes());
    out.extend(offset32.to_le_bytes());
    out.extend(0u16.to_le_bytes());
    out
}

/// A tensor as `_rebuild_tensor_v2` describes it.
pub struct Spec {
    pub name: String,
    pub class: &'static str,
    pub key: String,
    pub numel: u32,
    pub offset: u32,
    pub shape: Vec<u32>,
    pub stride: Vec<u32>,
}

pub fn spec(name: &str, key: &str, shape: &[u32]) -> Spec {
    let mut stride = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        stride[i] = stride[i + 1] * shape[i + 1];
    }
    Spec {
        name: name.into(),
        class: "BFloat16Storage",
        key: key.into(),
        numel: shape.iter().product(),
        offset: 0,
        shape: shape.to_vec(),
        stride,
    }
}

pub fn text(p: &mut Vec<u8>, s: &str) {
    p.push(b'X');
    p.extend((s.len() as u32).to_le_bytes());
    p.extend(s.as_bytes());
}

pub fn int(p: &mut Vec<u8>, i: u32) {
    p.push(b'J');
    p.extend((i as i32).to_le_bytes());
}

pub fn int_tuple(p: &mut Vec<u8>, items: &[u32]) {
    p.push(b'(');
    items.iter().for_each(|&i| int(p, i));
    p.push(b't');
}

/// The pickle expression for one tensor, as torch's protocol 2 output spells it.
pub fn tensor_expr(p: &mut Vec<u8>, s: &Spec) {
    p.extend(b"ctorch._utils\n_rebuild_tensor_v2\n((");
    text(p, "storage");
    p.extend(format!("ctorch\n{}\n", s.class).as_bytes());
    text(p, &s.key);
    text(p, "cpu");
    int(p, s.numel);
    p.extend(b"tQ");
    int(p, s.offset);
    int_tuple(p, &s.shape);
    int_tuple(p, &s.stride);
    p.extend(b"\x89ccollections\nOrderedDict\n)RtR");
}

/// A flat state dict pickle: `{name: tensor, ...}`.
pub fn state_dict(specs: &[Spec]) -> Vec<u8> {
    let mut p = vec![0x80, 2, b'}', b'('];
    for s in specs {
        text(&mut p, &s.name);
        tensor_expr(&mut p, s);
    }
    p.extend(b"u.");
    p
}

/// A checkpoint under "archive/" with the given pickle and storages (key, bytes).
pub fn checkpoint(pickle: &[u8], storages: &[(&str, Vec<u8>)], zip64: bool) -> Vec<u8> {
    let mut members = vec![
        member("archive/data.pkl", pickle),
        member("archive/byteorder", b"little"),
    ];
    for (key, bytes) in storages {
        members.push(member(&format!("archive/data/{key}"), bytes));
    }
    write_zip(&members, zip64)
}
