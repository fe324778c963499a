//! Test captures written byte by byte, for the readers' structural tests.

/// A pcapng block: type, total length, body (padded to 4), total length again.
pub(super) fn ng_block(out: &mut Vec<u8>, big_endian: bool, kind: u32, body: &[u8]) {
    let u32_bytes = |v: u32| {
        if big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    };
    let padded = body.len().next_multiple_of(4);
    let total = u32::try_from(12 + padded).unwrap();
    out.extend_from_slice(&u32_bytes(kind));
    out.extend_from_slice(&u32_bytes(total));
    out.extend_from_slice(body);
    out.resize(out.len() + padded - body.len(), 0);
    out.extend_from_slice(&u32_bytes(total));
}

/// A section in the given byte order: its header, one Ethernet interface, `frames` as
/// enhanced packet blocks.
pub(super) fn ng_section(out: &mut Vec<u8>, big_endian: bool, frames: &[Vec<u8>]) {
    let u32_bytes = |v: u32| {
        if big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    };
    let u16_bytes = |v: u16| {
        if big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    };
    let mut shb = u32_bytes(0x1a2b_3c4d).to_vec();
    shb.extend_from_slice(&u16_bytes(1));
    shb.extend_from_slice(&u16_bytes(0));
    shb.extend_from_slice(&[0xff; 8]);
    ng_block(out, big_endian, 0x0a0d_0d0a, &shb);
    let mut idb = u16_bytes(1).to_vec();
    idb.extend_from_slice(&[0, 0]);
    idb.extend_from_slice(&u32_bytes(65535));
    ng_block(out, big_endian, 1, &idb);
    for (i, f) in frames.iter().enumerate() {
        let len = u32::try_from(f.len()).unwrap();
        let mut epb = u32_bytes(0).to_vec();
        epb.extend_from_slice(&u32_bytes(0));
        epb.extend_from_slice(&u32_bytes(u32::try_from(i).unwrap()));
        epb.extend_from_slice(&u32_bytes(len));
        epb.extend_from_slice(&u32_bytes(len));
        epb.extend_from_slice(f);
        ng_block(out, big_endian, 6, &epb);
    }
}
