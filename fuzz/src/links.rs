//! The link types `decode` knows, plus one it does not, chosen by an input's first byte.

use mailtap::source::Linktype;

pub const LINKTYPES: [Linktype; 11] = [
    Linktype::ETHERNET,
    Linktype::RAW,
    Linktype::IPV4,
    Linktype::IPV6,
    Linktype::LINUX_SLL,
    Linktype::LINUX_SLL2,
    Linktype::NULL,
    Linktype::LOOP,
    // The DLT_RAW values some systems write instead of LINKTYPE_RAW.
    Linktype(12),
    Linktype(14),
    // IEEE 802.11, unsupported: decode must say so, whatever the bytes.
    Linktype(105),
];

/// The link type a selector byte stands for.
pub fn linktype(selector: u8) -> Linktype {
    LINKTYPES[usize::from(selector) % LINKTYPES.len()]
}

/// The selector byte of `link`, if it is one of [`LINKTYPES`].
pub fn selector(link: Linktype) -> Option<u8> {
    let i = LINKTYPES.iter().position(|l| *l == link)?;
    u8::try_from(i).ok()
}
