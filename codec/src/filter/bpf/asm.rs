//! A small classic-BPF assembler: instructions written into the caller's slice (or only
//! counted), forward jumps to labels patched when the label is bound.

use heapless::Vec;

use super::code::*;
use super::codegen::CHUNK_MAX;
use super::{BpfInsn, MAX_INSNS};
use crate::{Error, Result};

/// A forward jump target, bound once with [`Asm::bind`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Label(u16);

/// Where a conditional jump goes.
#[derive(Debug, Clone, Copy)]
pub(super) enum To {
    /// The next instruction.
    Next,
    /// Skip this many instructions.
    Skip(u8),
    /// A label.
    Label(Label),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Jt,
    Jf,
    K,
}

/// A jump waiting for its label to be bound.
#[derive(Debug, Clone, Copy)]
struct Fixup {
    at: u16,
    slot: Slot,
    label: u16,
}

/// More than the jumps that can wait at once: a chunk's compares and a few block jumps.
const FIXUPS: usize = CHUNK_MAX + 32;

/// Writes instructions, or only counts them (`write == false`), resolving forward jumps.
pub(super) struct Asm<'o> {
    out: &'o mut [BpfInsn],
    write: bool,
    len: usize,
    labels: u16,
    fixups: Vec<Fixup, FIXUPS>,
}

impl<'o> Asm<'o> {
    pub(super) fn new(out: &'o mut [BpfInsn], write: bool) -> Self {
        Asm {
            out,
            write,
            len: 0,
            labels: 0,
            fixups: Vec::new(),
        }
    }

    /// How many instructions were written (or counted) so far.
    pub(super) fn len(&self) -> usize {
        self.len
    }

    fn push(&mut self, insn: BpfInsn) -> Result<u16> {
        let at = self.len;
        if at >= MAX_INSNS {
            return Err(Error::TooLong("BPF program"));
        }
        if self.write {
            *self.out.get_mut(at).ok_or(Error::BufferTooSmall)? = insn;
        }
        self.len = at.saturating_add(1);
        u16::try_from(at).map_err(|_| Error::TooLong("BPF program"))
    }

    pub(super) fn stmt(&mut self, code: u16, k: u32) -> Result<()> {
        self.push(BpfInsn::stmt(code, k)).map(drop)
    }

    pub(super) fn label(&mut self) -> Result<Label> {
        let l = Label(self.labels);
        self.labels = self
            .labels
            .checked_add(1)
            .ok_or(Error::TooLong("BPF program"))?;
        Ok(l)
    }

    fn refer(&mut self, at: u16, slot: Slot, label: Label) -> Result<()> {
        self.fixups
            .push(Fixup {
                at,
                slot,
                label: label.0,
            })
            .map_err(|_| Error::CapacityExceeded("BPF compiler jump list"))
    }

    pub(super) fn jump(&mut self, code: u16, k: u32, jt: To, jf: To) -> Result<()> {
        let offset = |to: To| match to {
            To::Next | To::Label(_) => 0,
            To::Skip(n) => n,
        };
        let at = self.push(BpfInsn::jump(code, k, offset(jt), offset(jf)))?;
        if let To::Label(l) = jt {
            self.refer(at, Slot::Jt, l)?;
        }
        if let To::Label(l) = jf {
            self.refer(at, Slot::Jf, l)?;
        }
        Ok(())
    }

    /// An unconditional jump (32-bit offset) to `to`.
    pub(super) fn ja(&mut self, to: Label) -> Result<()> {
        let at = self.push(BpfInsn::stmt(JMP | JA, 0))?;
        self.refer(at, Slot::K, to)
    }

    /// Binds `label` to the next instruction and patches the jumps waiting for it.
    pub(super) fn bind(&mut self, label: Label) -> Result<()> {
        let mut i = 0;
        while let Some(&f) = self.fixups.get(i) {
            if f.label != label.0 {
                i = i.saturating_add(1);
                continue;
            }
            self.fixups.swap_remove(i);
            let at = usize::from(f.at);
            let distance = self
                .len
                .checked_sub(at)
                .and_then(|d| d.checked_sub(1))
                .ok_or(Error::TooLong("BPF jump"))?;
            let insn = if self.write {
                self.out.get_mut(at)
            } else {
                None
            };
            match f.slot {
                Slot::Jt | Slot::Jf => {
                    let d = u8::try_from(distance).map_err(|_| Error::TooLong("BPF jump"))?;
                    if let Some(insn) = insn {
                        if f.slot == Slot::Jt {
                            insn.jt = d;
                        } else {
                            insn.jf = d;
                        }
                    }
                }
                Slot::K => {
                    let d = u32::try_from(distance).map_err(|_| Error::TooLong("BPF jump"))?;
                    if let Some(insn) = insn {
                        insn.k = d;
                    }
                }
            }
        }
        Ok(())
    }

    /// Checks that no jump was left without a target.
    pub(super) fn finish(&self) -> Result<()> {
        if self.fixups.is_empty() {
            Ok(())
        } else {
            Err(Error::InvalidValue("BPF jump without a target"))
        }
    }
}
