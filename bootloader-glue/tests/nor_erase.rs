//! U-Boot env on erasable flash (the `no_std` store API): an erase must never reach beyond the
//! copy being written, because whatever shares its erase block (the current copy, or other data)
//! would be gone before the new copy is complete.

use eyas_bootloader_glue::storage::Storage;
use eyas_bootloader_glue::uboot::store::{ApplyOptions, CopyLocation, StoreError, UbootStore};
use eyas_bootloader_glue::uboot::{self, EnvFormat, FlagScheme};
use std::cell::RefCell;
use std::rc::Rc;

#[derive(Debug)]
struct Oops;
impl std::fmt::Display for Oops {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("out of range")
    }
}

/// One NOR chip shared by both copies; every erase is recorded.
#[derive(Clone)]
struct Nor {
    bytes: Rc<RefCell<Vec<u8>>>,
    erases: Rc<RefCell<Vec<(u64, u64)>>>,
    es: u64,
}

impl Storage for Nor {
    type Error = Oops;
    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), Oops> {
        let b = self.bytes.borrow();
        let o = offset as usize;
        buf.copy_from_slice(b.get(o..o + buf.len()).ok_or(Oops)?);
        Ok(())
    }
    fn write(&mut self, offset: u64, data: &[u8]) -> Result<(), Oops> {
        let mut b = self.bytes.borrow_mut();
        let o = offset as usize;
        for (d, s) in b
            .get_mut(o..o + data.len())
            .ok_or(Oops)?
            .iter_mut()
            .zip(data)
        {
            *d &= *s; // NOR programs by clearing bits
        }
        Ok(())
    }
    fn erase(&mut self, offset: u64, len: u64) -> Result<(), Oops> {
        self.erases.borrow_mut().push((offset, len));
        let mut b = self.bytes.borrow_mut();
        b.get_mut(offset as usize..(offset + len) as usize)
            .ok_or(Oops)?
            .fill(0xFF);
        Ok(())
    }
    fn sync(&mut self) -> Result<(), Oops> {
        Ok(())
    }
    fn erase_size(&self) -> Option<u64> {
        Some(self.es)
    }
}

#[test]
fn erase_never_reaches_the_other_copy() {
    const SIZE: usize = 0x100;
    let fmt = EnvFormat {
        flags: FlagScheme::Boolean,
        ..EnvFormat::redundant(SIZE)
    };
    // Both copies in ONE 0x200-byte erase block; copy 1 is current (active 1, copy 0 obsolete 0).
    let mut img = vec![0xFFu8; 2 * SIZE];
    let vars = [("BOOT_ORDER", "A B"), ("BOOT_A_LEFT", "3")];
    uboot::make_copy(&fmt, vars.iter().copied(), 0xFF, 0, &mut img[..SIZE]).unwrap();
    uboot::make_copy(&fmt, vars.iter().copied(), 0xFF, 1, &mut img[SIZE..]).unwrap();
    let nor = Nor {
        bytes: Rc::new(RefCell::new(img.clone())),
        erases: Rc::default(),
        es: 2 * SIZE as u64,
    };
    let mut st = UbootStore {
        format: fmt,
        copy0: CopyLocation {
            storage: nor.clone(),
            offset: 0,
        },
        copy1: Some(CopyLocation {
            storage: nor.clone(),
            offset: SIZE as u64,
        }),
    };
    let mut scratch = vec![0u8; 3 * SIZE];
    let r = st.apply(
        [("BOOT_ORDER", Some("B A"))].into_iter(),
        &ApplyOptions::default(),
        &mut scratch,
    );
    assert!(
        nor.erases.borrow().is_empty(),
        "erased {:x?}, which holds the current copy",
        nor.erases.borrow()
    );
    assert!(*nor.bytes.borrow() == img, "medium changed");
    let e = r.expect_err("a copy smaller than its erase block must be refused");
    assert!(
        matches!(e, StoreError::PartialEraseBlock { copy: 0, .. }),
        "{e:?}"
    );
    assert!(e.to_string().contains("erase block"), "{e}");

    // A copy that fills whole erase blocks is written (and only its own blocks are erased).
    let nor2 = Nor {
        bytes: Rc::new(RefCell::new(img.clone())),
        erases: Rc::default(),
        es: SIZE as u64,
    };
    let mut st = UbootStore {
        format: fmt,
        copy0: CopyLocation {
            storage: nor2.clone(),
            offset: 0,
        },
        copy1: Some(CopyLocation {
            storage: nor2.clone(),
            offset: SIZE as u64,
        }),
    };
    st.apply(
        [("BOOT_ORDER", Some("B A"))].into_iter(),
        &ApplyOptions::default(),
        &mut scratch,
    )
    .unwrap();
    assert_eq!(*nor2.erases.borrow(), [(0, SIZE as u64)]);
}

/// A copy size no buffer can hold is a clean error, not an arithmetic overflow.
#[test]
fn absurd_copy_size_is_an_error() {
    let nor = Nor {
        bytes: Rc::new(RefCell::new(vec![0xFF; 64])),
        erases: Rc::default(),
        es: 64,
    };
    let mut st = UbootStore {
        format: EnvFormat::redundant(usize::MAX / 2),
        copy0: CopyLocation {
            storage: nor.clone(),
            offset: 0,
        },
        copy1: Some(CopyLocation {
            storage: nor,
            offset: 0,
        }),
    };
    let mut scratch = vec![0u8; 64];
    let e = st
        .apply(
            [("A", Some("1"))].into_iter(),
            &ApplyOptions::default(),
            &mut scratch,
        )
        .unwrap_err();
    assert!(matches!(e, StoreError::BufferTooSmall { .. }), "{e:?}");
    assert!(matches!(
        st.load(&mut scratch),
        Err(StoreError::BufferTooSmall { .. })
    ));
}
