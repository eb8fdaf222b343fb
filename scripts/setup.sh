#!/usr/bin/env bash
# Installs what hvseed needs to build and test on a fresh Debian 12 machine (run as
# root, or with sudo available). Safe to run again: each step checks first.
#   scripts/setup.sh build   - the Rust musl target (to build the static first-boot agent)
#   scripts/setup.sh test    - the above plus every external checker the tests use
set -euo pipefail
cd "$(dirname "$0")/.."

what=${1:-build}
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"

if ! rustup target list --installed 2>/dev/null | grep -qx x86_64-unknown-linux-musl; then
  echo "setup: adding the x86_64-unknown-linux-musl target" >&2
  rustup target add x86_64-unknown-linux-musl
fi

[ "$what" = test ] || exit 0

# Debian packages of the real consumers hvseed's tests check against.
pkgs=(
  debconf            # debconf-set-selections --checkonly (preseeds)
  xorriso            # ISO inspection and remastering
  mtools dosfstools  # FAT images (images/efiboot.img, boot/grub/efi.img)
  cpio file
  qemu-system-x86 ovmf                     # boot tests (TCG), SeaBIOS and UEFI
  isolinux syslinux-common pxelinux        # BIOS boot loaders for fixture ISOs and PXE
  grub-efi-amd64-bin grub-common           # GRUB2 EFI image for the Ubuntu-layout fixture
  shim-signed grub-efi-amd64-signed        # the real signed UEFI chain of the Debian 12 fixture CD
  debian-installer-12-netboot-amd64        # a real d-i kernel+initrd, the preseed consumer
  installation-guide-amd64                 # its example preseed: the questions of bookworm's d-i
  dnsmasq-base                             # dnsmasq --test -C for the PXE tree
  isomd5sum                                # implantisomd5/checkisomd5: EL media check
  python3-venv python3-yaml  # python3-yaml: re-reads autoinstall files as YAML 1.1 (PyYAML, as subiquity)
  xkb-data           # the XKB layout codes subiquity takes for ubuntu2204/ubuntu2404 keyboards
  ufw                # reads back the agent's ufw user.rules (ENABLED=no: files only)
  systemd            # systemd-analyze verify reads the agent's first-boot unit (debian12)
  patch              # applies the agent's --diff output
  strace             # the agent tests signal it at its k-th rename and check its fsyncs
  ifupdown iptables  # ifquery / iptables-restore --test read the agent's files
  curl wget          # the install scripts fetch agent, plan and keys over HTTP (render tests)
  gpg gpg-agent      # render tests: a repository key, a signed local apt repository for apt-get update
  mmdebstrap         # live tests: Debian 12 roots for hosts booted in QEMU (tests/live/)
  qemu-utils         # live tests: qemu-img overlays, so a guest never writes the cached image
  iputils-ping iproute2 e2fsprogs  # live tests: ping from the test's namespace, mkfs.ext4 -d
  libvirt-clients openssh-client   # live tests: virsh over qemu+tcp and ssh into the host
  libnm0             # the library nmcli needs (no daemon); nmcli itself: see below
)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# NetworkManager's own nmcli, which reads the agent's EL9 keyfiles (`nmcli --offline`,
# NetworkManager >= 1.42): unpacked from bookworm's network-manager package into .nm/
# inside the checkout (git-ignored), never installed, so no NetworkManager daemon is
# started or enabled on this machine. libnm0 above is the one library it needs.
if [ ! -x .nm/usr/bin/nmcli ]; then
  echo "setup: unpacking network-manager's nmcli into .nm" >&2
  tmp=$(mktemp -d)
  (cd "$tmp" && chmod 755 . && apt-get download network-manager >/dev/null)
  rm -rf .nm
  dpkg-deb -x "$tmp"/network-manager_*.deb .nm
  rm -rf "$tmp"
fi

# netplan's own generator, which reads the agent's Ubuntu netplan files
# (`generate --root-dir`): bookworm's netplan.io 0.106 and its library unpacked into
# .netplan/ inside the checkout (git-ignored), never installed, so nothing changes how
# this machine's network is configured.
if [ ! -x .netplan/usr/libexec/netplan/generate ]; then
  echo "setup: unpacking netplan.io's generator into .netplan" >&2
  tmp=$(mktemp -d)
  (cd "$tmp" && chmod 755 . && apt-get download netplan.io libnetplan0 >/dev/null)
  rm -rf .netplan
  for d in "$tmp"/*.deb; do dpkg-deb -x "$d" .netplan; done
  rm -rf "$tmp"
fi

# The consumers of the Ubuntu targets' autoinstall files, unpacked from bookworm's
# packages into the checkout (git-ignored), never installed (cloud-init's boot units
# must not be enabled on this machine): cloud-init 22.4 (`cloud-init schema
# --config-file`, run from .venv-cloud-init with its Python dependencies); netplan's
# generator is unpacked above.
if [ ! -f .cloud-init/usr/lib/python3/dist-packages/cloudinit/cmd/main.py ]; then
  echo "setup: unpacking cloud-init into .cloud-init" >&2
  tmp=$(mktemp -d)
  (cd "$tmp" && chmod 755 . && apt-get download cloud-init >/dev/null)
  rm -rf .cloud-init
  dpkg-deb -x "$tmp"/cloud-init_*.deb .cloud-init
  rm -rf "$tmp"
fi
if [ ! -x .venv-cloud-init/bin/python ]; then
  echo "setup: installing cloud-init's Python dependencies into .venv-cloud-init" >&2
  python3 -m venv .venv-cloud-init
  .venv-cloud-init/bin/pip install -q pyyaml jsonschema jinja2 configobj requests jsonpatch oauthlib
fi

# pykickstart's ksvalidator, in a venv inside the checkout (.venv is git-ignored).
if [ ! -x .venv/bin/ksvalidator ]; then
  echo "setup: installing pykickstart into .venv" >&2
  python3 -m venv .venv
  .venv/bin/pip install -q pykickstart
fi
