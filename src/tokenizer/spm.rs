//! SentencePiece ("llama", SPM) encoding of one text fragment, as llama.cpp's
//! `llm_tokenizer_spm_session` does it: starting from one symbol per character, the adjacent
//! pair whose concatenation is a piece of highest score is merged, again and again (ties: the
//! leftmost pair). A heap of candidate pairs keeps this O(n log n); stale entries are skipped
//! when popped. A character left that is no piece becomes its UTF-8 bytes as `<0xXX>` pieces
//! (byte fallback), or the unknown id.

use super::Tokenizer;
use std::cmp::Ordering;
use std::collections::BinaryHeap;

impl Tokenizer {
    /// The bigram merge of one escaped fragment (llama.cpp's `llm_tokenizer_spm_session`).
    pub(super) fn encode_fragment(&self, text: &str, out: &mut Vec<u32>) {
        // One symbol per character; merged symbols stay contiguous slices of `text`.
        let mut syms: Vec<Symbol> = Vec::with_capacity(text.len());
        for (start, c) in text.char_indices() {
            let i = syms.len() as i32;
            syms.push(Symbol {
                start,
                len: c.len_utf8(),
                prev: i - 1,
                next: i + 1,
            });
        }
        if let Some(last) = syms.last_mut() {
            last.next = -1;
        }
        let mut heap = BinaryHeap::with_capacity(syms.len());
        for i in 1..syms.len() {
            self.push_pair(text, &syms, i as i32 - 1, i as i32, &mut heap);
        }
        while let Some(pair) = heap.pop() {
            let (l, r) = (pair.left as usize, pair.right as usize);
            // Stale: one side was merged away or grew since this pair was queued.
            if syms[l].len == 0 || syms[r].len == 0 || syms[l].len + syms[r].len != pair.len {
                continue;
            }
            syms[l].len += syms[r].len;
            syms[r].len = 0;
            let after = syms[r].next;
            syms[l].next = after;
            if after >= 0 {
                syms[after as usize].prev = pair.left;
            }
            self.push_pair(text, &syms, syms[l].prev, pair.left, &mut heap);
            self.push_pair(text, &syms, pair.left, after, &mut heap);
        }
        let mut i = 0i32;
        while i >= 0 && (i as usize) < syms.len() {
            let s = &syms[i as usize];
            let piece = &text[s.start..s.start + s.len];
            match self.index.get(piece) {
                Some(&id) => out.push(id),
                None => self.push_bytes(piece, out),
            }
            i = s.next;
        }
    }

    fn push_pair(
        &self,
        text: &str,
        syms: &[Symbol],
        left: i32,
        right: i32,
        heap: &mut BinaryHeap<Pair>,
    ) {
        if left < 0 || right < 0 {
            return;
        }
        let (l, r) = (&syms[left as usize], &syms[right as usize]);
        let len = l.len + r.len;
        if let Some(&id) = self.index.get(&text[l.start..l.start + len]) {
            heap.push(Pair {
                score: self.scores[id as usize],
                left,
                right,
                len,
            });
        }
    }

    /// A character that is no piece: its UTF-8 bytes as byte pieces, or the unknown id.
    fn push_bytes(&self, piece: &str, out: &mut Vec<u32>) {
        let ids: Option<Vec<u32>> = piece.bytes().map(|b| self.byte_ids[b as usize]).collect();
        match (ids, self.unk) {
            (Some(ids), _) => out.extend(ids),
            (None, Some(unk)) => out.push(unk),
            // No byte piece and no unknown piece: nothing can stand for the character.
            (None, None) => {}
        }
    }
}

#[derive(Clone, Copy)]
struct Symbol {
    start: usize,
    /// Byte length; 0 once merged into the symbol on its left.
    len: usize,
    prev: i32,
    next: i32,
}

/// A candidate merge of two adjacent symbols. The heap pops the highest score first, and among
/// equal scores the leftmost pair.
struct Pair {
    score: f32,
    left: i32,
    right: i32,
    len: usize,
}

impl Ord for Pair {
    fn cmp(&self, other: &Self) -> Ordering {
        self.score
            .total_cmp(&other.score)
            .then_with(|| other.left.cmp(&self.left))
    }
}

impl PartialOrd for Pair {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Pair {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Pair {}
