//! Ubuntu 24.04 LTS (noble) amd64, installed by subiquity's autoinstall from the
//! live-server ISO (family: [`super::subiquity`]; its `.disk/info` says
//! `Ubuntu-Server 24.04.N LTS "Noble Numbat" - Release amd64 (…)`).

use hvseed_plan::plan::Os;

pub static TARGET: super::Target =
    super::subiquity::ubuntu_target!(Os::Ubuntu2404, "24.04", "noble", "ubuntu2404");
