//! Line splitting shaped as a push decoder (like arrow-json's): feed byte blocks of any size,
//! get back chunks of whole lines of about `chunk_size` bytes. Memory is bounded by
//! `chunk_size + max_line_size`: a line longer than `max_line_size` is cut off, reported as a
//! reject (with its first KiB), and the rest of it skipped up to the next newline.

use crate::batch::{BufPool, Reject};

/// How many bytes of an over-long line are kept for the dead-letter record.
const OVERSIZE_KEEP: usize = 1024;

/// Complete lines ready to be parsed.
#[derive(Debug)]
pub struct Lines {
    /// 1-based number of the first line in `data`.
    pub first_line: u64,
    /// Whole lines.
    pub data: Vec<u8>,
    /// Lines refused for their size, with their line numbers.
    pub rejects: Vec<Reject>,
}

/// Push decoder from byte blocks to [`Lines`].
#[derive(Debug)]
pub struct LineSplitter {
    chunk_size: usize,
    max_line_size: usize,
    buf: Vec<u8>,
    pool: BufPool,
    /// Line number of the first line in `buf`.
    first_line: u64,
    /// Inside an over-long line: bytes skipped so far.
    skipping: Option<usize>,
    rejects: Vec<Reject>,
}

impl LineSplitter {
    /// A splitter emitting chunks of about `chunk_size` bytes.
    /// Chunk buffers come from `pool`, which should hold buffers of `chunk_size` bytes.
    pub fn new(chunk_size: usize, max_line_size: usize, pool: BufPool) -> Self {
        LineSplitter {
            chunk_size: chunk_size.clamp(1, max_line_size.max(1)),
            max_line_size,
            buf: pool.take(),
            pool,
            first_line: 1,
            skipping: None,
            rejects: Vec::new(),
        }
    }

    /// Feeds a block; calls `emit` for each full chunk of lines.
    pub fn push(&mut self, mut data: &[u8], emit: &mut dyn FnMut(Lines)) {
        while !data.is_empty() {
            if let Some(skipped) = self.skipping {
                match memchr::memchr(b'\n', data) {
                    Some(p) => {
                        self.end_oversize(skipped + p);
                        data = &data[p + 1..];
                    }
                    None => {
                        self.skipping = Some(skipped + data.len());
                        return;
                    }
                }
                continue;
            }
            if self.buf.len() < self.chunk_size {
                let take = (self.chunk_size - self.buf.len()).min(data.len());
                self.buf.extend_from_slice(&data[..take]);
                data = &data[take..];
                if self.buf.len() >= self.chunk_size {
                    if let Some(p) = memchr::memrchr(b'\n', &self.buf) {
                        let mut rest = self.pool.take();
                        rest.extend_from_slice(&self.buf[p + 1..]);
                        self.buf.truncate(p + 1);
                        let full = std::mem::replace(&mut self.buf, rest);
                        self.emit(full, emit);
                    }
                }
                continue;
            }
            // `buf` holds the start of one line longer than a chunk: read on to its end.
            match memchr::memchr(b'\n', data) {
                Some(p) if self.buf.len() + p <= self.max_line_size => {
                    self.buf.extend_from_slice(&data[..=p]);
                    data = &data[p + 1..];
                    let full = std::mem::replace(&mut self.buf, self.pool.take());
                    self.emit(full, emit);
                }
                Some(p) => {
                    self.start_oversize(p);
                    let skipped = self.skipping.take().unwrap_or(0);
                    self.end_oversize(skipped);
                    data = &data[p + 1..];
                }
                None if self.buf.len() + data.len() > self.max_line_size => {
                    self.start_oversize(data.len());
                    return;
                }
                None => {
                    self.buf.extend_from_slice(data);
                    return;
                }
            }
        }
    }

    /// Turns the long line in `buf` (plus `more` bytes not stored) into a reject in progress.
    fn start_oversize(&mut self, more: usize) {
        let head: Vec<u8> = self.buf[..OVERSIZE_KEEP.min(self.buf.len())].to_vec();
        let skipped = self.buf.len() - head.len() + more;
        self.rejects.push(Reject {
            outcome: None,
            entry: None,
            line: self.first_line,
            text: head,
            reason: String::new(),
            type_idx: None,
        });
        let grown = std::mem::replace(&mut self.buf, self.pool.take());
        self.pool.give(grown);
        self.skipping = Some(skipped);
    }

    fn end_oversize(&mut self, skipped: usize) {
        let max = self.max_line_size;
        if let Some(reject) = self.rejects.last_mut() {
            reject.reason = format!(
                "line is {} bytes, longer than pipeline.max_line_size ({max} bytes); only its first {} bytes are kept here",
                reject.text.len() + skipped,
                reject.text.len()
            );
        }
        self.skipping = None;
        self.first_line += 1;
    }

    fn emit(&mut self, data: Vec<u8>, emit: &mut dyn FnMut(Lines)) {
        let lines = memchr::memchr_iter(b'\n', &data).count() as u64
            + u64::from(!data.is_empty() && data.last() != Some(&b'\n'));
        let first_line = self.first_line;
        self.first_line += lines;
        emit(Lines {
            first_line,
            data,
            rejects: std::mem::take(&mut self.rejects),
        });
    }

    /// Ends the input: emits what is left (a last line without `\n` included).
    pub fn finish(mut self, emit: &mut dyn FnMut(Lines)) {
        if let Some(skipped) = self.skipping {
            self.end_oversize(skipped);
        }
        let data = std::mem::take(&mut self.buf);
        if !data.is_empty() || !self.rejects.is_empty() {
            self.emit(data, emit);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(input: &[u8], block: usize, chunk: usize, max_line: usize) -> Vec<Lines> {
        let mut out = Vec::new();
        let mut s = LineSplitter::new(chunk, max_line, BufPool::new(2, chunk));
        for b in input.chunks(block) {
            s.push(b, &mut |l| out.push(l));
        }
        s.finish(&mut |l| out.push(l));
        out
    }

    #[test]
    fn chunks_hold_whole_lines_and_number_them() {
        let input = b"a1\nb22\nc333\nd4444\ne\n";
        for block in [1, 2, 3, 7, 100] {
            for chunk in [1, 4, 8, 64] {
                let out = split(input, block, chunk, 1 << 20);
                let joined: Vec<u8> = out.iter().flat_map(|l| l.data.clone()).collect();
                assert_eq!(joined, input.to_vec(), "block {block} chunk {chunk}");
                let mut expect = 1;
                for l in &out {
                    assert_eq!(l.first_line, expect);
                    assert!(l.data.ends_with(b"\n"));
                    expect += l.data.iter().filter(|&&b| b == b'\n').count() as u64;
                }
            }
        }
    }

    #[test]
    fn last_line_without_newline_is_kept() {
        let out = split(b"x\ny", 1, 1, 1 << 20);
        let joined: Vec<u8> = out.iter().flat_map(|l| l.data.clone()).collect();
        assert_eq!(joined, b"x\ny".to_vec());
        assert_eq!(out.last().unwrap().first_line, 2);
    }

    #[test]
    fn over_long_line_is_rejected_and_skipped() {
        let mut input = b"ok1\n".to_vec();
        input.extend(std::iter::repeat_n(b'z', 5000));
        input.extend_from_slice(b"\nok3\n");
        let out = split(&input, 100, 64, 2048);
        let rejects: Vec<&Reject> = out.iter().flat_map(|l| &l.rejects).collect();
        assert_eq!(rejects.len(), 1);
        assert_eq!(rejects[0].line, 2);
        assert_eq!(rejects[0].text.len(), OVERSIZE_KEEP);
        assert!(
            rejects[0]
                .reason
                .starts_with("line is 5000 bytes, longer than pipeline.max_line_size (2048 bytes)"),
            "{}",
            rejects[0].reason
        );
        let joined: Vec<u8> = out.iter().flat_map(|l| l.data.clone()).collect();
        assert_eq!(joined, b"ok1\nok3\n".to_vec());
        let ok3 = out.iter().find(|l| l.data.starts_with(b"ok3")).unwrap();
        assert_eq!(ok3.first_line, 3);
    }

    #[test]
    fn long_line_under_the_limit_passes_whole() {
        let mut input = b"first\n".to_vec();
        input.extend(std::iter::repeat_n(b'q', 100_000));
        input.extend_from_slice(b"\nlast\n");
        let out = split(&input, 4096, 1024, 1 << 20);
        assert!(out.iter().all(|l| l.rejects.is_empty()));
        let big = out
            .iter()
            .find(|l| l.data.len() > 100_000)
            .expect("the long line in one chunk");
        assert!(big.data.ends_with(b"\n"));
        let joined: Vec<u8> = out.iter().flat_map(|l| l.data.clone()).collect();
        assert_eq!(joined, input);
    }
}
