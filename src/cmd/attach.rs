//! `breakerbox attach URL…`: the console on a gateway running elsewhere, or on a fleet of them
//! (see `attach/`, the gateways' HTTP/SSE client).

use color_eyre::eyre::{Result, bail};
use std::io::IsTerminal;
use std::path::Path;

use crate::attach::{MemberSpec, Options, attach, attach_fleet};
use crate::cli::{AttachArgs, Cli, TokenArgs};
use crate::config::{Config, FleetGateway};
use crate::console::app;
use crate::console::ui::Ui;
use crate::session::setup::load_config;

/// `breakerbox attach URL…`: the console on one remote gateway, or over several, until the
/// operator quits.
pub async fn run(cli: &Cli, args: &AttachArgs) -> Result<i32> {
    if !std::io::stdout().is_terminal() {
        bail!(
            "the console needs a terminal; `breakerbox attach` shows a gateway's console (for scripts, read its /events directly)"
        );
    }
    let token = super::read_token(&args.token)?;
    let config = load_config(&cli.common)?;
    let keys = super::keys(&config)?;
    let ui = Ui {
        color: super::colour(cli.no_color),
        ..Ui::default()
    };
    let mut specs = members(&args.urls, &config)?;
    let (mut app, events, reader) = if let [only] = specs.as_slice()
        && only.name.is_none()
        && only.token.is_none()
    {
        attach(&only.url, token, Options::default())
            .await?
            .into_app(ui, keys)
    } else {
        for spec in &mut specs {
            if spec.token.is_none() {
                spec.token.clone_from(&token);
            }
        }
        attach_fleet(specs, Options::default())
            .await?
            .into_app(ui, keys)
    };
    let result = app::run_in_terminal(&mut app, events).await;
    drop(reader);
    result?;
    Ok(0)
}

/// The gateways to watch: those given, else the config's `[fleet]`.
pub fn members(urls: &[String], config: &Config) -> Result<Vec<MemberSpec>> {
    if !urls.is_empty() {
        return urls.iter().map(|u| MemberSpec::parse(u)).collect();
    }
    let origin = config
        .source
        .as_deref()
        .map_or_else(|| "the config".to_string(), |p| p.display().to_string());
    if config.fleet.gateways.is_empty() {
        bail!(
            "no gateway to attach to: give its URL (`breakerbox attach http://127.0.0.1:8080`), or list several in the config's [fleet] gateways (--config FILE)"
        );
    }
    let base = config.source.as_deref().and_then(Path::parent);
    config
        .fleet
        .gateways
        .iter()
        .map(|gateway| match gateway {
            FleetGateway::Url(url) => MemberSpec::parse(url),
            FleetGateway::Table(table) => {
                let token = match &table.token_file {
                    Some(path) => {
                        let path = match base {
                            Some(base) if path.is_relative() => base.join(path),
                            _ => path.clone(),
                        };
                        let args = TokenArgs {
                            token: None,
                            token_file: Some(path),
                        };
                        super::read_token(&args).map_err(|e| {
                            e.wrap_err(format!("{origin}: [fleet] gateway {}", table.url))
                        })?
                    }
                    None => None,
                };
                Ok(MemberSpec {
                    name: table.name.clone(),
                    url: table.url.clone(),
                    token,
                })
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fleet_comes_from_the_urls_else_the_config() {
        let dir = std::env::temp_dir().join(format!("bb-fleet-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a directory");
        std::fs::write(dir.join("c.token"), "c-secret\n").expect("a token file");
        let text = r#"
            [fleet]
            gateways = [
                "http://10.0.0.5:8080",
                "gw-b=http://10.0.0.6:8080",
                { name = "gw-c", url = "http://10.0.0.7:8080", token_file = "c.token" },
            ]
        "#;
        let mut config = Config::parse(text, "fleet.toml").expect("a config");
        config.source = Some(dir.join("fleet.toml"));
        let specs = members(&[], &config).expect("members");
        let got: Vec<(Option<&str>, &str, Option<&str>)> = specs
            .iter()
            .map(|s| (s.name.as_deref(), s.url.as_str(), s.token.as_deref()))
            .collect();
        assert_eq!(
            got,
            [
                (None, "http://10.0.0.5:8080", None),
                (Some("gw-b"), "http://10.0.0.6:8080", None),
                (Some("gw-c"), "http://10.0.0.7:8080", Some("c-secret")),
            ]
        );
        // URLs given win over the config.
        let specs = members(&["a=http://h:1".to_string()], &config).expect("members");
        assert_eq!(specs.len(), 1);
        let none = members(&[], &Config::default()).unwrap_err().to_string();
        assert!(none.contains("[fleet] gateways"), "{none}");
        let bad = Config::parse(
            "[fleet]\ngateways = [{ url = \"x\", tokn = \"y\" }]",
            "f.toml",
        );
        assert!(bad.is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
