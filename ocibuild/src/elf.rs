//! A check that a file will run in an image with no libraries in it: a Linux x86-64 ELF
//! executable without a program interpreter (the dynamic loader).

use std::path::Path;

use goblin::elf::Elf;
use goblin::elf::header::{EM_X86_64, ET_DYN, ET_EXEC};

use crate::error::BuildError;

pub fn check_static_executable(path: &Path, bytes: &[u8]) -> Result<(), BuildError> {
    let not_exe = |reason: String| BuildError::NotAnExecutable {
        path: path.to_path_buf(),
        reason,
    };
    let elf = Elf::parse(bytes).map_err(|e| not_exe(e.to_string()))?;
    if elf.header.e_machine != EM_X86_64 || !elf.is_64 {
        return Err(not_exe(format!(
            "machine type {} (expected x86-64)",
            elf.header.e_machine
        )));
    }
    // static-pie executables are ET_DYN without an interpreter; both kinds run alone.
    if !matches!(elf.header.e_type, ET_EXEC | ET_DYN) {
        return Err(not_exe(format!("ELF type {}", elf.header.e_type)));
    }
    if let Some(interpreter) = elf.interpreter {
        return Err(BuildError::NotStatic {
            path: path.to_path_buf(),
            interpreter: interpreter.to_string(),
        });
    }
    if elf.entry == 0 {
        return Err(not_exe("no entry point (a shared library?)".into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_a_dynamically_linked_binary() {
        // Any binary from the host distribution is dynamically linked.
        let path = Path::new("/bin/sh");
        let bytes = std::fs::read(path).unwrap();
        let err = check_static_executable(path, &bytes).unwrap_err();
        assert!(matches!(err, BuildError::NotStatic { .. }), "{err}");
        assert!(err.to_string().contains("crt-static"), "{err}");
    }

    #[test]
    fn rejects_non_elf() {
        let err = check_static_executable(Path::new("x"), b"#!/bin/sh\n").unwrap_err();
        assert!(matches!(err, BuildError::NotAnExecutable { .. }), "{err}");
    }
}
