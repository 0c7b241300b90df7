//! Local Security Hub emulator.
