//! Token texts: each distinct text of a file is allocated once and shared by its tokens.
//!
//! Most tokens repeat (`(`, `self`, `let`, the crate's own names), so a file of 5,000 tokens
//! has a few hundred distinct texts; allocating each token its own `String` made lexing and
//! freeing the tokens most of the linter's own time (see BENCHMARKS.md, "Layer linter").

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::ops::Deref;
use std::sync::Arc;

/// The text of a token: a shared, immutable string that reads like a `&str`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Text(Arc<str>);

impl Text {
    /// The text.
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

impl Deref for Text {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl std::borrow::Borrow<str> for Text {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for Text {
    fn eq(&self, other: &str) -> bool {
        &*self.0 == other
    }
}

impl PartialEq<&str> for Text {
    fn eq(&self, other: &&str) -> bool {
        &*self.0 == *other
    }
}

impl From<&str> for Text {
    fn from(text: &str) -> Self {
        Text(Arc::from(text))
    }
}

impl From<String> for Text {
    fn from(text: String) -> Self {
        Text(Arc::from(text))
    }
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

/// The texts of one file so far, by their slice of the source.
#[derive(Default)]
pub(super) struct Interner<'s> {
    seen: HashMap<&'s str, Text, FastHash>,
}

impl<'s> Interner<'s> {
    /// The shared text of `slice`, allocated on its first occurrence.
    pub(super) fn text(&mut self, slice: &'s str) -> Text {
        if let Some(text) = self.seen.get(slice) {
            return text.clone();
        }
        let text = Text::from(slice);
        self.seen.insert(slice, text.clone());
        text
    }
}

/// A set of strings hashed with [`Fx`].
pub(crate) type FastSet<'a> = HashSet<&'a str, FastHash>;

/// [`Fx`] as a `BuildHasher`.
pub(crate) type FastHash = BuildHasherDefault<Fx>;

/// The Fx hash (Firefox's, rustc's): a multiply and a rotate per word. Short identifiers
/// from files we read need no defence against flooding, and SipHash cost as much as the
/// lexing around it.
#[derive(Default)]
pub(crate) struct Fx(u64);

impl Hasher for Fx {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        for &byte in chunks.remainder() {
            self.add(u64::from(byte));
        }
    }

    fn write_u8(&mut self, byte: u8) {
        self.add(u64::from(byte));
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

impl Fx {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_slices_share_one_text() {
        let source = String::from("self self selfish");
        let mut interner = Interner::default();
        let a = interner.text(&source[0..4]);
        let b = interner.text(&source[5..9]);
        let c = interner.text(&source[10..17]);
        assert!(Arc::ptr_eq(&a.0, &b.0));
        assert_eq!(a, "self");
        assert_eq!(c.as_str(), "selfish");
        assert_eq!(format!("{c} {c:?}"), "selfish \"selfish\"");
        let set: FastSet<'_> = ["a", "b"].into_iter().collect();
        assert!(set.contains("a") && !set.contains("c"));
    }
}
