//! A cursor over a fuzz input: little-endian fields and byte runs, `None` at the end.

pub struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(input: &'a [u8]) -> Self {
        Reader { rest: input }
    }

    pub fn u8(&mut self) -> Option<u8> {
        let (&b, rest) = self.rest.split_first()?;
        self.rest = rest;
        Some(b)
    }

    pub fn u16(&mut self) -> Option<u16> {
        let bytes = self.array::<2>()?;
        Some(u16::from_le_bytes(bytes))
    }

    pub fn u32(&mut self) -> Option<u32> {
        let bytes = self.array::<4>()?;
        Some(u32::from_le_bytes(bytes))
    }

    /// The next `n` bytes, or fewer when the input ends first (a length field larger than what
    /// follows still yields the bytes that are there).
    pub fn take(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.rest.split_at(n.min(self.rest.len()));
        self.rest = rest;
        head
    }

    /// Everything not read yet.
    pub fn rest(&mut self) -> &'a [u8] {
        self.take(self.rest.len())
    }

    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        let head = self.rest.get(..N)?;
        let bytes = head.try_into().ok()?;
        self.rest = self.rest.get(N..)?;
        Some(bytes)
    }
}
