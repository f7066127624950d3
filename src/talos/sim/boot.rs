//! The boot loader's two slots (GRUB's `A` and `B` entries) and META's
//! `Upgrade` tag, as Talos keeps them. Upstream (siderolabs/talos):
//!
//! - `internal/app/machined/pkg/runtime/v1alpha1/bootloader/grub/boot_label.go`,
//!   `SelectUpgradeTarget`: an upgrade writes the slot the machine did
//!   *not* boot from and makes it the default; the booted slot is kept as
//!   the fallback (the previous image).
//! - `.../bootloader/grub/revert.go`, `Revert` (the `Rollback` RPC):
//!   default and fallback swap; when the other slot was never written the
//!   call fails with `cannot rollback to "", label does not exist` (upstream
//!   formats an empty label into that message).
//! - `internal/app/machined/revert.go`, `revertBootloader`: a boot that
//!   fails while META holds the `Upgrade` tag reverts to the label it
//!   names, and the machine reboots into the previous image by itself.
//! - `internal/app/machined/pkg/controllers/runtime/drop_upgrade_fallback.go`:
//!   the tag is dropped once the machine is running and ready, so a later
//!   failure no longer reverts.

/// A boot loader entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Label {
    /// `A`.
    A,
    /// `B`.
    B,
}

impl Label {
    fn other(self) -> Label {
        match self {
            Label::A => Label::B,
            Label::B => Label::A,
        }
    }
}

/// What an installed image does when it boots (faults a test injects
/// through `SimCluster::fail_image`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ImageFault {
    /// Boots normally.
    #[default]
    None,
    /// The boot fails before the machine is running (a kernel that does not
    /// come up, a machined that exits): with the `Upgrade` tag set the
    /// machine reverts to the previous slot and reboots by itself.
    NeverBoots,
    /// Boots and runs, but the kubelet never becomes healthy (the machine
    /// stays up on the new image: a client's health gate must catch it).
    KubeletUnhealthy,
}

/// What a slot holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    /// Talos tag, e.g. `v1.14.0`.
    pub version: String,
    /// The installer image reference it was installed from.
    pub reference: String,
    /// How it behaves at boot.
    pub fault: ImageFault,
}

/// The two slots, the default entry and META's `Upgrade` tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slots {
    a: Option<Image>,
    b: Option<Image>,
    /// The entry the next boot starts.
    default: Label,
    /// The entry the running system booted from.
    booted: Option<Label>,
    /// META `Upgrade`: the label to revert to if the next boot fails.
    upgrade_tag: Option<Label>,
}

impl Default for Slots {
    fn default() -> Self {
        Slots { a: None, b: None, default: Label::A, booted: None, upgrade_tag: None }
    }
}

impl Slots {
    fn slot_mut(&mut self, l: Label) -> &mut Option<Image> {
        match l {
            Label::A => &mut self.a,
            Label::B => &mut self.b,
        }
    }

    fn slot(&self, l: Label) -> Option<&Image> {
        match l {
            Label::A => self.a.as_ref(),
            Label::B => self.b.as_ref(),
        }
    }

    /// The first install (from maintenance mode, or a disk image): slot A.
    pub fn install(&mut self, image: Image) {
        *self = Slots { a: Some(image), default: Label::A, ..Slots::default() };
    }

    /// An upgrade: the slot not booted gets `image` and becomes the
    /// default; the booted one stays as the fallback, named by the
    /// `Upgrade` tag (`SelectUpgradeTarget`).
    pub fn upgrade(&mut self, image: Image) {
        let booted = self.booted.unwrap_or(self.default);
        let target = booted.other();
        *self.slot_mut(target) = Some(image);
        self.default = target;
        self.upgrade_tag = Some(booted);
    }

    /// `Rollback`: the other slot becomes the default (`Revert`).
    pub fn revert(&mut self) -> Result<(), String> {
        let target = self.default.other();
        if self.slot(target).is_none() {
            return Err("cannot rollback to \"\", label does not exist".to_string());
        }
        self.default = target;
        Ok(())
    }

    /// The image the next boot starts, if any is installed.
    pub fn next(&self) -> Option<&Image> {
        self.slot(self.default)
    }

    /// The image not booted: the one a rollback would start.
    pub fn previous(&self) -> Option<&Image> {
        self.slot(self.booted.unwrap_or(self.default).other())
    }

    /// A boot starts the default entry; returns its image.
    pub fn boot(&mut self) -> Option<Image> {
        self.booted = Some(self.default);
        self.next().cloned()
    }

    /// The boot failed: with the `Upgrade` tag set the default reverts to
    /// the label it names and the tag is dropped; true if it did
    /// (`revertBootloader`).
    pub fn boot_failed(&mut self) -> bool {
        match self.upgrade_tag.take() {
            Some(l) if self.slot(l).is_some() => {
                self.default = l;
                true
            }
            _ => false,
        }
    }

    /// Running and ready: the fallback tag is dropped
    /// (`DropUpgradeFallbackController`).
    pub fn boot_succeeded(&mut self) {
        self.upgrade_tag = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn img(v: &str, fault: ImageFault) -> Image {
        Image { version: v.into(), reference: format!("ghcr.io/siderolabs/installer:{v}"), fault }
    }

    #[test]
    fn upgrade_keeps_the_booted_slot_and_rollback_returns_to_it() {
        // boot_label.go SelectUpgradeTarget; revert.go Revert.
        let mut s = Slots::default();
        s.install(img("v1.12.6", ImageFault::None));
        assert_eq!(s.boot().unwrap().version, "v1.12.6");
        assert_eq!(s.revert().unwrap_err(), "cannot rollback to \"\", label does not exist");
        s.upgrade(img("v1.13.9", ImageFault::None));
        assert_eq!(s.boot().unwrap().version, "v1.13.9");
        s.boot_succeeded();
        assert_eq!(s.previous().unwrap().version, "v1.12.6");
        s.revert().unwrap();
        assert_eq!(s.boot().unwrap().version, "v1.12.6");
        // The next upgrade overwrites the slot not booted (v1.13.9's).
        s.upgrade(img("v1.14.0", ImageFault::None));
        assert_eq!(s.previous().unwrap().version, "v1.14.0", "written, not booted yet");
        assert_eq!(s.boot().unwrap().version, "v1.14.0");
        assert_eq!(s.previous().unwrap().version, "v1.12.6");
    }

    #[test]
    fn a_failed_boot_reverts_only_while_the_upgrade_tag_is_set() {
        // machined revert.go; drop_upgrade_fallback.go.
        let mut s = Slots::default();
        s.install(img("v1.13.9", ImageFault::None));
        s.boot();
        s.upgrade(img("v1.14.0", ImageFault::NeverBoots));
        assert_eq!(s.boot().unwrap().fault, ImageFault::NeverBoots);
        assert!(s.boot_failed());
        assert_eq!(s.boot().unwrap().version, "v1.13.9");
        assert!(!s.boot_failed(), "the tag is gone after one revert");
        s.upgrade(img("v1.14.1", ImageFault::None));
        s.boot();
        s.boot_succeeded();
        assert!(!s.boot_failed(), "running and ready dropped the tag");
    }
}
