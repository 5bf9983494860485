//! Property tests of the netlink layer (slow under Miri: run natively).
#![cfg(not(miri))]

use conntrack_codec::nl::{Attrs, Messages, Writer};
use conntrack_codec::Error;
use proptest::prelude::*;

#[derive(Debug, Clone, PartialEq)]
enum Node {
    Leaf(u16, Vec<u8>),
    Nest(u16, Vec<Node>),
}

fn node() -> impl Strategy<Value = Node> {
    let leaf = (0u16..0x3fff, prop::collection::vec(any::<u8>(), 0..24))
        .prop_map(|(k, p)| Node::Leaf(k, p));
    leaf.prop_recursive(4, 48, 6, |inner| {
        (0u16..0x3fff, prop::collection::vec(inner, 0..6)).prop_map(|(k, c)| Node::Nest(k, c))
    })
}

fn write(w: &mut Writer<'_>, nodes: &[Node]) -> Result<(), Error> {
    for n in nodes {
        match n {
            Node::Leaf(k, p) => w.attr(*k, p)?,
            Node::Nest(k, c) => w.nest(*k, |w| write(w, c))?,
        }
    }
    Ok(())
}

fn read(attrs: Attrs<'_>) -> Result<Vec<Node>, Error> {
    attrs
        .map(|a| {
            let a = a?;
            Ok(if a.is_nested() {
                Node::Nest(a.kind(), read(a.nested())?)
            } else {
                Node::Leaf(a.kind(), a.payload().to_vec())
            })
        })
        .collect()
}

/// Visits everything the views can reach, treating every payload as possibly nested.
fn visit_all(bytes: &[u8]) -> usize {
    fn attrs(a: Attrs<'_>, depth: u32) -> usize {
        let mut n = 0;
        for x in a {
            let Ok(x) = x else { break };
            n += 1;
            let _ = (
                x.u8(),
                x.u16_be(),
                x.u32_be(),
                x.u64_be(),
                x.u32_ne(),
                x.c_str(),
            );
            if depth < 6 {
                n += attrs(x.nested(), depth + 1);
            }
        }
        n
    }
    let mut n = 0;
    for m in Messages::new(bytes) {
        let Ok(m) = m else { break };
        let _ = m.control();
        n += attrs(Attrs::new(m.payload()), 0);
        n += attrs(Attrs::new(m.payload().get(4..).unwrap_or(&[])), 0);
    }
    n
}

fn nodes() -> impl Strategy<Value = Vec<Node>> {
    prop::collection::vec(node(), 0..8)
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        visit_all(&bytes);
    }

    #[test]
    fn arbitrary_message_headers_never_panic(
        len in 0u32..600, kind in any::<u16>(), flags in any::<u16>(),
        body in prop::collection::vec(any::<u8>(), 0..512),
    ) {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&len.to_ne_bytes());
        bytes.extend_from_slice(&kind.to_ne_bytes());
        bytes.extend_from_slice(&flags.to_ne_bytes());
        bytes.extend_from_slice(&[0; 8]);
        bytes.extend_from_slice(&body);
        visit_all(&bytes);
    }

    #[test]
    fn attribute_trees_round_trip(tree in nodes()) {
        let mut buf = vec![0xa5u8; 1 << 16];
        let mut w = Writer::new(&mut buf);
        write(&mut w, &tree).unwrap();
        let parsed = read(Attrs::new(w.written())).unwrap();
        prop_assert_eq!(parsed, tree);
    }

    #[test]
    fn messages_round_trip(trees in prop::collection::vec(nodes(), 1..4), seq in any::<u32>()) {
        let mut buf = vec![0xa5u8; 1 << 17];
        let mut w = Writer::new(&mut buf);
        for (i, t) in trees.iter().enumerate() {
            w.message(0x100 + i as u16, 1, seq, 0, |w| write(w, t)).unwrap();
        }
        let mut count = 0;
        for (m, t) in Messages::new(w.written()).zip(&trees) {
            let m = m.unwrap();
            prop_assert_eq!(m.seq(), seq);
            prop_assert_eq!(&read(Attrs::new(m.payload())).unwrap(), t);
            count += 1;
        }
        prop_assert_eq!(count, trees.len());
    }

    #[test]
    fn every_too_small_buffer_is_an_error(tree in nodes()) {
        let mut full = vec![0u8; 1 << 16];
        let mut w = Writer::new(&mut full);
        let need = w.message(0x100, 1, 1, 0, |w| write(w, &tree)).unwrap().end;
        for size in 0..need {
            let mut small = vec![0u8; size];
            let mut w = Writer::new(&mut small);
            prop_assert!(w.message(0x100, 1, 1, 0, |w| write(w, &tree)).is_err());
            prop_assert!(w.is_empty());
        }
    }
}
