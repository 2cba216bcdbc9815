//! CDR (XCDR1, as ROS 2 uses it) primitives: a bounds-checked reader and a little-endian writer.
//!
//! Alignment is relative to the byte after the 4-byte encapsulation header. Every length prefix
//! is checked against the bytes left before anything is allocated, so hostile input cannot make
//! the decoder allocate more than the message itself.

use super::error::DecodeError;
use crate::sensors::Stamp;

/// Reads CDR values from a message payload (after the encapsulation header).
pub struct CdrReader<'a> {
    buf: &'a [u8],
    pos: usize,
    little: bool,
}

impl<'a> CdrReader<'a> {
    /// Parses the encapsulation header (CDR_LE / CDR_BE, plain or parameter-list variants).
    pub fn new(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        if bytes.len() < 4 {
            return Err(DecodeError::Truncated {
                need: 4,
                at: 0,
                have: bytes.len(),
            });
        }
        let little = match (bytes[0], bytes[1]) {
            (0, 0) | (0, 2) => false,
            (0, 1) | (0, 3) => true,
            (a, b) => return Err(DecodeError::BadEncapsulation(a, b)),
        };
        Ok(Self {
            buf: &bytes[4..],
            pos: 0,
            little,
        })
    }

    pub fn is_little_endian(&self) -> bool {
        self.little
    }

    pub fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    fn align(&mut self, n: usize) -> Result<(), DecodeError> {
        let pad = (n - self.pos % n) % n;
        self.take(pad).map(|_| ())
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if n > self.remaining() {
            return Err(DecodeError::Truncated {
                need: n,
                at: self.pos + 4,
                have: self.remaining(),
            });
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn fixed<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        self.align(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        if !self.little {
            a.reverse();
        }
        Ok(a)
    }

    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }
    pub fn bool(&mut self) -> Result<bool, DecodeError> {
        Ok(self.u8()? != 0)
    }
    pub fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_le_bytes(self.fixed()?))
    }
    pub fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.fixed()?))
    }
    pub fn i32(&mut self) -> Result<i32, DecodeError> {
        Ok(i32::from_le_bytes(self.fixed()?))
    }
    pub fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(self.fixed()?))
    }
    pub fn f32(&mut self) -> Result<f32, DecodeError> {
        Ok(f32::from_le_bytes(self.fixed()?))
    }
    pub fn f64(&mut self) -> Result<f64, DecodeError> {
        Ok(f64::from_le_bytes(self.fixed()?))
    }

    pub fn f64_array<const N: usize>(&mut self) -> Result<[f64; N], DecodeError> {
        let mut a = [0.0; N];
        for v in a.iter_mut() {
            *v = self.f64()?;
        }
        Ok(a)
    }

    /// A sequence length, checked so that `len * min_elem_bytes` fits in the bytes left.
    pub fn seq_len(&mut self, min_elem_bytes: usize) -> Result<usize, DecodeError> {
        let at = self.pos + 4;
        let len = self.u32()? as u64;
        if len.saturating_mul(min_elem_bytes.max(1) as u64) > self.remaining() as u64 {
            return Err(DecodeError::LengthTooLarge {
                len,
                at,
                have: self.remaining(),
            });
        }
        Ok(len as usize)
    }

    /// `uint8[]` as a borrowed slice.
    pub fn bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let n = self.seq_len(1)?;
        self.take(n)
    }

    pub fn string(&mut self) -> Result<String, DecodeError> {
        let at = self.pos + 4;
        let n = self.seq_len(1)?;
        let s = self.take(n)?;
        // The length counts the NUL terminator; tolerate writers that omit it (length 0).
        let body = match s.split_last() {
            Some((0, body)) => body,
            None => s,
            Some(_) => return Err(DecodeError::BadString(at)),
        };
        std::str::from_utf8(body)
            .map(str::to_owned)
            .map_err(|_| DecodeError::BadString(at))
    }

    /// `builtin_interfaces/Time` as nanoseconds (negative times clamp to 0).
    pub fn time(&mut self) -> Result<Stamp, DecodeError> {
        let sec = self.i32()? as i64;
        let nsec = self.u32()? as i64;
        Ok((sec * 1_000_000_000 + nsec).max(0) as Stamp)
    }
}

/// Writes little-endian CDR, starting with the CDR_LE encapsulation header.
pub struct CdrWriter {
    buf: Vec<u8>,
}

impl Default for CdrWriter {
    fn default() -> Self {
        Self::with_capacity(64)
    }
}

impl CdrWriter {
    pub fn with_capacity(n: usize) -> Self {
        let mut buf = Vec::with_capacity(n + 4);
        buf.extend_from_slice(&[0, 1, 0, 0]);
        Self { buf }
    }

    pub fn finish(self) -> Vec<u8> {
        self.buf
    }

    fn align(&mut self, n: usize) {
        let pos = self.buf.len() - 4;
        let pad = (n - pos % n) % n;
        self.buf.resize(self.buf.len() + pad, 0);
    }

    pub fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }
    pub fn bool(&mut self, v: bool) {
        self.buf.push(v as u8);
    }
    pub fn u16(&mut self, v: u16) {
        self.align(2);
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    pub fn u32(&mut self, v: u32) {
        self.align(4);
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    pub fn i32(&mut self, v: i32) {
        self.align(4);
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    pub fn u64(&mut self, v: u64) {
        self.align(8);
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    pub fn f32(&mut self, v: f32) {
        self.align(4);
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    pub fn f64(&mut self, v: f64) {
        self.align(8);
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    pub fn f64s(&mut self, v: &[f64]) {
        for &x in v {
            self.f64(x);
        }
    }
    pub fn seq_len(&mut self, n: usize) {
        self.u32(n as u32);
    }
    pub fn bytes(&mut self, v: &[u8]) {
        self.seq_len(v.len());
        self.buf.extend_from_slice(v);
    }
    pub fn string(&mut self, s: &str) {
        self.seq_len(s.len() + 1);
        self.buf.extend_from_slice(s.as_bytes());
        self.buf.push(0);
    }
    /// `builtin_interfaces/Time` from nanoseconds.
    pub fn time(&mut self, t: Stamp) {
        self.i32((t / 1_000_000_000).min(i32::MAX as u64) as i32);
        self.u32((t % 1_000_000_000) as u32);
    }
}
