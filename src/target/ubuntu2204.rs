//! Ubuntu 22.04 LTS (jammy) amd64, installed by subiquity's autoinstall from the
//! live-server ISO (family: [`super::subiquity`]; its `.disk/info` says
//! `Ubuntu-Server 22.04.N LTS "Jammy Jellyfish" - Release amd64 (…)`).

use hvseed_plan::plan::Os;

pub static TARGET: super::Target =
    super::subiquity::ubuntu_target!(Os::Ubuntu2204, "22.04", "jammy", "ubuntu2204");
