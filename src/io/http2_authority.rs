//! etcdctl 3.4 (grpc-go 1.26) sends `:authority: http://host:port` when it dials a member's
//! client URL (e.g. `endpoint status --cluster`). etcd's grpc-go server ignores the bad
//! authority; Rust's h2 rejects the stream with PROTOCOL_ERROR. This rewriter sits on the
//! client-to-server byte stream of every client connection and strips the scheme from such a
//! literal `:authority` field before h2 parses it. Everything else passes byte for byte.
//!
//! Shortening a literal is safe for HPACK's dynamic table: the server's entries only get
//! smaller, so it evicts later than the client, and the client never refers to an entry it
//! evicted. A header block that cannot be parsed is passed on unchanged for h2 to judge.

const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const PREFACE_BYTES: usize = PREFACE.len();
const FRAME_HEADER_BYTES: usize = 9;
const FRAME_HEADERS: u8 = 0x1;
const FRAME_CONTINUATION: u8 = 0x9;
const FLAG_END_HEADERS: u8 = 0x4;
const FLAG_PADDED: u8 = 0x8;
const FLAG_PRIORITY: u8 = 0x20;
/// h2's default SETTINGS_MAX_FRAME_SIZE; rewritten frames never exceed it.
const FRAME_PAYLOAD_BYTES_MAX: usize = 16_384;
/// A header block larger than this is passed through untouched (and the rewriter with it).
const HEADER_BLOCK_BYTES_MAX: usize = 1024 * 1024;

struct PendingHeaders {
    stream_id: [u8; 4],
    flags: u8,
    priority: Option<[u8; 5]>,
    block: Vec<u8>,
}

/// Incremental rewriter for the client-to-server direction of one HTTP/2 connection.
#[derive(Default)]
pub struct AuthorityRewriter {
    preface_seen: usize,
    buffer: Vec<u8>,
    pending: Option<PendingHeaders>,
    /// Set when the stream is not something this rewriter understands: copy from now on.
    passthrough: bool,
}

impl AuthorityRewriter {
    /// Consumes `input`, appending to `output` every byte that is ready to go on. Frames are
    /// read straight from `input`; only an incomplete frame at its end is kept for the next.
    pub fn feed(&mut self, input: &[u8], output: &mut Vec<u8>) {
        if self.passthrough {
            output.extend_from_slice(input);
            return;
        }
        if self.buffer.is_empty() {
            let consumed = self.consume(input, output);
            self.buffer.extend_from_slice(&input[consumed..]);
        } else {
            let mut buffer = std::mem::take(&mut self.buffer);
            buffer.extend_from_slice(input);
            let consumed = self.consume(&buffer, output);
            buffer.drain(..consumed);
            self.buffer = buffer;
        }
    }

    /// Passes on the preface and every whole frame at the start of `data`; returns how many
    /// bytes it took.
    fn consume(&mut self, data: &[u8], output: &mut Vec<u8>) -> usize {
        let mut start = 0;
        if self.preface_seen < PREFACE_BYTES {
            // HTTP/1.1 on the client port (etcd's HTTP endpoints) is not this rewriter's.
            let compared = (PREFACE_BYTES - self.preface_seen).min(data.len());
            let expected = &PREFACE[self.preface_seen..self.preface_seen + compared];
            if data[..compared] != *expected {
                self.give_up(data, output);
                return data.len();
            }
            output.extend_from_slice(&data[..compared]);
            self.preface_seen += compared;
            start = compared;
        }
        while self.preface_seen == PREFACE_BYTES && data.len() - start >= FRAME_HEADER_BYTES {
            let length = u32::from_be_bytes([0, data[start], data[start + 1], data[start + 2]]);
            let length = length as usize;
            if length > HEADER_BLOCK_BYTES_MAX {
                self.give_up(&data[start..], output);
                return data.len();
            }
            let end = start + FRAME_HEADER_BYTES + length;
            if data.len() < end {
                break;
            }
            self.frame(&data[start..end], output);
            if self.passthrough {
                output.extend_from_slice(&data[end..]);
                return data.len();
            }
            start = end;
        }
        start
    }

    /// Copies what is pending and `rest`, and stops rewriting.
    fn give_up(&mut self, rest: &[u8], output: &mut Vec<u8>) {
        if let Some(pending) = self.pending.take() {
            emit_headers(pending, output);
        }
        output.extend_from_slice(rest);
        self.passthrough = true;
    }

    fn frame(&mut self, frame: &[u8], output: &mut Vec<u8>) {
        let (kind, flags) = (frame[3], frame[4]);
        let stream_id: [u8; 4] = frame[5..9].try_into().unwrap();
        let payload = &frame[FRAME_HEADER_BYTES..];
        match kind {
            FRAME_HEADERS => {
                let Some((priority, block)) = headers_payload(flags, payload) else {
                    output.extend_from_slice(frame);
                    return;
                };
                if flags & FLAG_END_HEADERS != 0 && rewrite_block(block).is_none() {
                    // A whole block with nothing to change (every request but a connection's
                    // first, as a rule): the frame goes on as it came, not copied and rebuilt.
                    output.extend_from_slice(frame);
                    return;
                }
                let pending = PendingHeaders {
                    stream_id,
                    flags: flags & !FLAG_PADDED,
                    priority,
                    block: block.to_vec(),
                };
                if flags & FLAG_END_HEADERS != 0 {
                    emit_headers(pending, output);
                } else {
                    self.pending = Some(pending);
                }
            }
            FRAME_CONTINUATION if self.pending.is_some() => {
                let pending = self.pending.as_mut().expect("checked");
                pending.block.extend_from_slice(payload);
                if pending.block.len() > HEADER_BLOCK_BYTES_MAX {
                    self.give_up(&[], output);
                    return;
                }
                if flags & FLAG_END_HEADERS != 0 {
                    let mut pending = self.pending.take().expect("checked");
                    pending.flags |= FLAG_END_HEADERS;
                    emit_headers(pending, output);
                }
            }
            _ => output.extend_from_slice(frame),
        }
    }
}

/// The priority fields and header block fragment of a HEADERS payload, without padding.
fn headers_payload(flags: u8, payload: &[u8]) -> Option<(Option<[u8; 5]>, &[u8])> {
    let mut rest = payload;
    let mut padding = 0;
    if flags & FLAG_PADDED != 0 {
        padding = *rest.first()? as usize;
        rest = &rest[1..];
    }
    let mut priority = None;
    if flags & FLAG_PRIORITY != 0 {
        priority = Some(rest.get(..5)?.try_into().ok()?);
        rest = &rest[5..];
    }
    let block_len = rest.len().checked_sub(padding)?;
    Some((priority, &rest[..block_len]))
}

/// Writes the (possibly rewritten) header block as HEADERS plus CONTINUATION frames.
fn emit_headers(pending: PendingHeaders, output: &mut Vec<u8>) {
    let block = rewrite_block(&pending.block).unwrap_or(pending.block);
    let end_headers = pending.flags & FLAG_END_HEADERS != 0;
    let priority_len = pending.priority.map_or(0, |_| 5);
    let first_len = block.len().min(FRAME_PAYLOAD_BYTES_MAX - priority_len);
    let mut chunks = vec![&block[..first_len]];
    chunks.extend(block[first_len..].chunks(FRAME_PAYLOAD_BYTES_MAX));
    let count = chunks.len();
    for (position, chunk) in chunks.into_iter().enumerate() {
        let last = position + 1 == count;
        let (kind, mut flags, prefix) = if position == 0 {
            (
                FRAME_HEADERS,
                pending.flags & !FLAG_END_HEADERS,
                pending.priority.map(|p| p.to_vec()).unwrap_or_default(),
            )
        } else {
            (FRAME_CONTINUATION, 0, Vec::new())
        };
        if last && end_headers {
            flags |= FLAG_END_HEADERS;
        }
        let length = (prefix.len() + chunk.len()) as u32;
        output.extend_from_slice(&length.to_be_bytes()[1..]);
        output.push(kind);
        output.push(flags);
        output.extend_from_slice(&pending.stream_id);
        output.extend_from_slice(&prefix);
        output.extend_from_slice(chunk);
    }
}

/// RFC 7541 5.1 integer with an `prefix_bits`-bit prefix at `position`; returns it and the
/// position after it.
fn decode_integer(block: &[u8], position: usize, prefix_bits: u8) -> Option<(usize, usize)> {
    let mask = (1u16 << prefix_bits) as usize - 1;
    let mut value = (*block.get(position)? as usize) & mask;
    let mut next = position + 1;
    if value < mask {
        return Some((value, next));
    }
    let mut shift = 0;
    loop {
        let byte = *block.get(next)?;
        next += 1;
        value = value.checked_add(((byte & 0x7f) as usize).checked_shl(shift)?)?;
        shift += 7;
        if byte & 0x80 == 0 || shift > 28 {
            return (byte & 0x80 == 0).then_some((value, next));
        }
    }
}

/// RFC 7541 5.2 string at `position`: where its bytes are, whether they are Huffman-coded,
/// and the position after it. Nothing is decoded: most strings are only skipped.
fn locate_string(block: &[u8], position: usize) -> Option<(std::ops::Range<usize>, bool, usize)> {
    let huffman = block.get(position)? & 0x80 != 0;
    let (length, start) = decode_integer(block, position, 7)?;
    let end = start.checked_add(length)?;
    block.get(start..end)?;
    Some((start..end, huffman, end))
}

thread_local! {
    /// hpack's decoder builds its code tables in `new` (hash maps of all 257 codes): far
    /// dearer than a decode, so each thread builds one and keeps it.
    static HUFFMAN: std::cell::RefCell<hpack::huffman::HuffmanDecoder> =
        std::cell::RefCell::new(hpack::huffman::HuffmanDecoder::new());
}

/// The string's bytes, Huffman-decoded when they are coded.
fn string_bytes(raw: &[u8], huffman: bool) -> Option<std::borrow::Cow<'_, [u8]>> {
    if !huffman {
        return Some(std::borrow::Cow::Borrowed(raw));
    }
    HUFFMAN
        .with(|decoder| decoder.borrow_mut().decode(raw).ok())
        .map(std::borrow::Cow::Owned)
}

fn encode_raw_string(value: &[u8], output: &mut Vec<u8>) {
    let length = value.len();
    if length < 0x7f {
        output.push(length as u8);
    } else {
        output.push(0x7f);
        let mut rest = length - 0x7f;
        while rest >= 0x80 {
            output.push((rest % 0x80) as u8 | 0x80);
            rest /= 0x80;
        }
        output.push(rest as u8);
    }
    output.extend_from_slice(value);
}

/// `http://host:port[/...]` -> `host:port`; `None` for a value without a scheme.
fn strip_scheme(value: &[u8]) -> Option<&[u8]> {
    let text = std::str::from_utf8(value).ok()?;
    let rest = text
        .strip_prefix("http://")
        .or_else(|| text.strip_prefix("https://"))?;
    Some(rest.split('/').next().unwrap_or(rest).as_bytes())
}

/// The block with every literal `:authority` URL reduced to host:port; `None` if nothing
/// changed or the block is not valid HPACK.
pub fn rewrite_block(block: &[u8]) -> Option<Vec<u8>> {
    const AUTHORITY_STATIC_INDEX: usize = 1;
    // Built only once a field changes: most blocks pass without a copy.
    let mut output: Option<Vec<u8>> = None;
    let mut copied_upto = 0;
    let mut position = 0;
    while position < block.len() {
        let first = block[position];
        let prefix_bits = match first {
            byte if byte & 0x80 != 0 => 7,
            byte if byte & 0xc0 == 0x40 => 6,
            byte if byte & 0xe0 == 0x20 => 5,
            _ => 4,
        };
        let (index, after_index) = decode_integer(block, position, prefix_bits)?;
        if prefix_bits == 7 || prefix_bits == 5 {
            // An indexed field or a table size update: nothing to rewrite.
            position = after_index;
            continue;
        }
        let (is_authority, after_name) = if index == 0 {
            let (name, huffman, after_name) = locate_string(block, after_index)?;
            let name = string_bytes(&block[name], huffman)?;
            (*name == *b":authority", after_name)
        } else {
            (index == AUTHORITY_STATIC_INDEX, after_index)
        };
        let (value, huffman, after_value) = locate_string(block, after_name)?;
        // Only an authority's value is decoded: every other field passes as it came.
        let value = match is_authority {
            true => Some(string_bytes(&block[value], huffman)?),
            false => None,
        };
        if let Some(stripped) = value.as_deref().and_then(strip_scheme) {
            let output = output.get_or_insert_with(|| Vec::with_capacity(block.len()));
            output.extend_from_slice(&block[copied_upto..after_name]);
            encode_raw_string(stripped, output);
            copied_upto = after_value;
        }
        position = after_value;
    }
    let mut output = output?;
    output.extend_from_slice(&block[copied_upto..]);
    Some(output)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn literal_authority(value: &str) -> Vec<u8> {
        // Literal with incremental indexing, indexed name :authority (static index 1).
        let mut block = vec![0x41];
        encode_raw_string(value.as_bytes(), &mut block);
        block
    }

    #[test]
    fn strips_the_scheme_from_a_literal_authority_only() {
        let mut block = vec![0x82]; // :method GET, indexed
        block.extend(literal_authority("http://127.0.0.1:2379"));
        block.push(0x40); // literal, new name
        encode_raw_string(b"x-other", &mut block);
        encode_raw_string(b"http://kept", &mut block);
        let rewritten = rewrite_block(&block).expect("changed");
        let mut expected = vec![0x82];
        expected.extend(literal_authority("127.0.0.1:2379"));
        expected.push(0x40);
        encode_raw_string(b"x-other", &mut expected);
        encode_raw_string(b"http://kept", &mut expected);
        assert_eq!(rewritten, expected);
        assert_eq!(
            rewrite_block(&literal_authority("127.0.0.1:2379")),
            None,
            "a valid authority is untouched"
        );
    }

    #[test]
    fn http1_passes_byte_for_byte() {
        let request = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n\x00\x00\x05\x01\x04junk";
        let mut rewriter = AuthorityRewriter::default();
        let mut output = Vec::new();
        for byte in request {
            rewriter.feed(&[*byte], &mut output);
        }
        assert_eq!(output, request);
    }

    #[test]
    fn frames_are_rebuilt_and_other_bytes_pass_unchanged() {
        let mut stream = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
        let settings = [0u8, 0, 0, 0x4, 0, 0, 0, 0, 0];
        stream.extend_from_slice(&settings);
        let block = literal_authority("http://10.0.0.1:2379/");
        let mut headers = vec![
            0,
            0,
            block.len() as u8,
            FRAME_HEADERS,
            FLAG_END_HEADERS | 0x1,
            0,
            0,
            0,
            1,
        ];
        headers.extend_from_slice(&block);
        stream.extend_from_slice(&headers);
        let mut rewriter = AuthorityRewriter::default();
        let mut output = Vec::new();
        // Byte by byte: frames split across reads must come out whole.
        for byte in &stream {
            rewriter.feed(std::slice::from_ref(byte), &mut output);
        }
        let fixed = literal_authority("10.0.0.1:2379");
        let mut expected = stream[..24 + 9].to_vec();
        expected.extend_from_slice(&[
            0,
            0,
            fixed.len() as u8,
            FRAME_HEADERS,
            FLAG_END_HEADERS | 0x1,
            0,
            0,
            0,
            1,
        ]);
        expected.extend_from_slice(&fixed);
        assert_eq!(output, expected);
    }

    #[test]
    fn a_huffman_coded_authority_is_decoded_and_one_without_a_scheme_kept() {
        // RFC 7541 C.4.1: "www.example.com", Huffman-coded.
        let coded = [
            0xf1, 0xe3, 0xc2, 0xe5, 0xf2, 0x3a, 0x6b, 0xa0, 0xab, 0x90, 0xf4, 0xff,
        ];
        let mut block = vec![0x41, 0x80 | coded.len() as u8];
        block.extend_from_slice(&coded);
        assert_eq!(
            string_bytes(&coded, true).as_deref(),
            Some(&b"www.example.com"[..])
        );
        assert_eq!(rewrite_block(&block), None);
    }

    #[test]
    fn frames_come_out_the_same_however_the_reads_split_them() {
        let mut stream = PREFACE.to_vec();
        for stream_id in [1u8, 3, 5] {
            let block = literal_authority("http://10.0.0.1:2379");
            stream.extend_from_slice(&[0, 0, block.len() as u8, FRAME_HEADERS, FLAG_END_HEADERS]);
            stream.extend_from_slice(&[0, 0, 0, stream_id]);
            stream.extend_from_slice(&block);
            let data = vec![7u8; 300];
            stream.extend_from_slice(&[0, 1, 44, 0x0, 0x1, 0, 0, 0, stream_id]);
            stream.extend_from_slice(&data);
        }
        let whole = {
            let mut output = Vec::new();
            AuthorityRewriter::default().feed(&stream, &mut output);
            output
        };
        assert!(whole.len() < stream.len(), "the authorities were shortened");
        for chunk_bytes in [1, 7, 9, 10, 64, 333] {
            let mut rewriter = AuthorityRewriter::default();
            let mut output = Vec::new();
            for chunk in stream.chunks(chunk_bytes) {
                rewriter.feed(chunk, &mut output);
            }
            assert_eq!(output, whole, "reads of {chunk_bytes} bytes");
        }
    }
}
