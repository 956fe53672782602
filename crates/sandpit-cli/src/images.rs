//! `sandpit images build|list`.

use anyhow::Result;
use clap::Subcommand;
use sandpit::image;
use sandpit::Language;

use crate::connect::ConnectionArgs;

/// Image subcommands.
#[derive(Debug, Subcommand)]
pub enum ImagesCommand {
    /// Build default images (all when none is named), building the Debian base first if needed.
    Build {
        /// Languages to build.
        languages: Vec<String>,
    },
    /// List Sandpit's images and which defaults are missing.
    List,
}

pub async fn images(conn: &ConnectionArgs, cmd: ImagesCommand) -> Result<u8> {
    let engine = conn.engine().await?;
    match cmd {
        ImagesCommand::Build { languages } => {
            let languages: Vec<Language> = if languages.is_empty() {
                Language::ALL.to_vec()
            } else {
                languages
                    .iter()
                    .map(|l| l.parse::<Language>())
                    .collect::<Result<_, _>>()?
            };
            for language in languages {
                let spec = sandpit::runner(language).default_image();
                let started = std::time::Instant::now();
                eprintln!("building {} ...", spec.tag);
                let progress = crate::progress::Reporter::new("  ");
                let built = image::build_default_image(&engine, &spec, &progress.sink()).await;
                progress.finish();
                built?;
                eprintln!(
                    "built {} in {:.1} s",
                    spec.tag,
                    started.elapsed().as_secs_f64()
                );
            }
            Ok(0)
        }
        ImagesCommand::List => {
            let images = image::list_images(&engine, "sandpit/").await?;
            println!("{:<40} {:>10}  ID", "IMAGE", "SIZE");
            for img in &images {
                for tag in img.tags.iter().filter(|t| t.starts_with("sandpit/")) {
                    let id = img.id.trim_start_matches("sha256:");
                    println!(
                        "{:<40} {:>7} MB  {}",
                        tag,
                        img.size / 1_000_000,
                        &id[..id.len().min(12)]
                    );
                }
            }
            for language in Language::ALL {
                let tag = sandpit::runner(*language).default_image().tag;
                if !images.iter().any(|i| i.tags.contains(&tag)) {
                    println!(
                        "{tag:<40} {:>10}  (missing: sandpit images build {language})",
                        "-"
                    );
                }
            }
            Ok(0)
        }
    }
}
