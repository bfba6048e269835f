//! `wirelag completions SHELL` and `wirelag man`: shell completion scripts and roff man pages,
//! generated from the clap definitions in [`crate::cli`], so they never drift from `--help`.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::CommandFactory;

use crate::cli::Cli;

/// The completion script for `shell` on `out`.
pub fn completions(shell: clap_complete::Shell, out: &mut dyn Write) -> anyhow::Result<()> {
    let mut cmd = Cli::command();
    clap_complete::generate(shell, &mut cmd, "wirelag", out);
    out.flush()?;
    Ok(())
}

/// The man page of `wirelag` (with its list of subcommands) on `out`; or, with `dir`, one page
/// per command and subcommand (wirelag.1, wirelag-frames.1, wirelag-inject-delay.1, ...)
/// written into it, their paths listed on `out`.
pub fn man(dir: Option<&Path>, out: &mut dyn Write) -> anyhow::Result<()> {
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    match dir {
        None => clap_mangen::Man::new(cmd)
            .render(out)
            .context("writing the man page")?,
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            let mut written = Vec::new();
            write_pages(&cmd, dir, &mut written)?;
            for path in written {
                writeln!(out, "{}", path.display())?;
            }
        }
    }
    out.flush()?;
    Ok(())
}

fn write_pages(cmd: &clap::Command, dir: &Path, written: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    let page = clap_mangen::Man::new(cmd.clone());
    let path = page
        .generate_to(dir)
        .with_context(|| format!("cannot write {}", dir.join(page.get_filename()).display()))?;
    written.push(path);
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        write_pages(sub, dir, written)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shell_gets_a_script_naming_the_subcommands() {
        for shell in [
            clap_complete::Shell::Bash,
            clap_complete::Shell::Zsh,
            clap_complete::Shell::Fish,
            clap_complete::Shell::Elvish,
            clap_complete::Shell::PowerShell,
        ] {
            let mut out = Vec::new();
            completions(shell, &mut out).unwrap();
            let text = String::from_utf8(out).unwrap();
            for sub in ["frames", "analyze", "interfaces", "experiment"] {
                assert!(text.contains(sub), "{shell:?} script lacks {sub}");
            }
        }
    }

    #[test]
    fn man_pages_go_one_per_subcommand_into_a_directory() {
        let dir = std::env::temp_dir().join(format!("wirelag-man-test-{}", std::process::id()));
        let mut out = Vec::new();
        man(Some(&dir), &mut out).unwrap();
        let listed = String::from_utf8(out).unwrap();
        for page in [
            "wirelag.1",
            "wirelag-frames.1",
            "wirelag-interfaces.1",
            "wirelag-inject-delay.1",
        ] {
            let path = dir.join(page);
            assert!(listed.contains(&path.display().to_string()), "{listed}");
            let text = std::fs::read_to_string(&path).unwrap();
            assert!(text.starts_with(".ie") || text.contains(".TH"), "{page}");
        }
        assert!(!dir.join("wirelag-help.1").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
