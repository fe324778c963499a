//! A run of captured frames in one input, for targets that keep state across frames (the
//! defragmenter behind `decode_reassembling`): each frame is two bytes of length (big-endian),
//! a link-type selector (`links`), then its bytes. A frame cut short by the input's end is
//! taken as it is.

use mailtap::source::Linktype;

/// The frames of `input`, with their link types.
pub fn frames(mut input: &[u8]) -> impl Iterator<Item = (Linktype, &[u8])> {
    std::iter::from_fn(move || {
        let (&[hi, lo, selector], rest) = input.split_first_chunk::<3>()?;
        let len = usize::from(u16::from_be_bytes([hi, lo])).min(rest.len());
        let (frame, after) = rest.split_at(len);
        input = after;
        Some((super::links::linktype(selector), frame))
    })
}

/// The input [`frames`] reads back as these frames (each at most 64 KiB - 1).
pub fn encode<'a>(frames: impl IntoIterator<Item = (u8, &'a [u8])>) -> Vec<u8> {
    let mut out = Vec::new();
    for (selector, frame) in frames {
        let frame = frame.get(..usize::from(u16::MAX)).unwrap_or(frame);
        out.extend((frame.len() as u16).to_be_bytes());
        out.push(selector);
        out.extend_from_slice(frame);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_read_back() {
        let input = encode([(0, &b"abc"[..]), (1, &b""[..]), (2, &b"de"[..])]);
        let got: Vec<_> = frames(&input).map(|(_, f)| f.to_vec()).collect();
        assert_eq!(got, [b"abc".to_vec(), vec![], b"de".to_vec()]);
        // Cut short: the last frame is what is left.
        let got: Vec<_> = frames(&input[..input.len() - 1])
            .map(|(_, f)| f.len())
            .collect();
        assert_eq!(got, [3, 0, 1]);
    }
}
