# The hanat NAT image: Amazon Linux 2023 minimal + Node 22 + the agent bundle +
# a hardened hanat-agent.service, for arm64 (Graviton, the default) or x86_64.
#
# Build it with scripts/build-ami, which resolves the source image from AWS's
# public SSM parameter, runs this template, requires IMDSv2 on the result and
# publishes its id to SSM /hanat/ami/<arch>. To run Packer by hand, bring an
# ed25519 key as build-ami does (Packer before 1.7 signs its own temporary RSA
# key with ssh-rsa, which AL2023 refuses, and would wait for SSH until timeout):
#
#   ssh-keygen -t ed25519 -N '' -f /tmp/hanat-build
#   aws ec2 import-key-pair --region eu-west-1 --key-name hanat-build \
#     --public-key-material fileb:///tmp/hanat-build.pub
#   packer build \
#     -var arch=arm64 -var region=eu-west-1 \
#     -var ssh_keypair_name=hanat-build -var ssh_private_key_file=/tmp/hanat-build \
#     -var source_ami="$(aws ssm get-parameter --region eu-west-1 \
#         --name /aws/service/ami-amazon-linux-latest/al2023-ami-minimal-kernel-default-arm64 \
#         --query Parameter.Value --output text)" \
#     templates/packer/hanat-nat.pkr.hcl
#   aws ec2 delete-key-pair --region eu-west-1 --key-name hanat-build
#
# Written for Packer 1.6.6 (Debian 12) and later. 1.6.6 has neither the
# amazon-parameterstore data source nor metadata_options/imds_support, hence
# the source_ami variable and the post-build ImdsSupport step in build-ami.

variable "arch" {
  type        = string
  default     = "arm64"
  description = "CPU architecture of the image: arm64 or x86_64."

  validation {
    condition     = contains(["arm64", "x86_64"], var.arch)
    error_message = "The arch value must be arm64 or x86_64."
  }
}

variable "region" {
  type        = string
  description = "AWS region to build and register the image in."

  validation {
    condition     = var.region != "" && regex_replace(var.region, "^[a-z]{2}(-[a-z]+)+-[0-9]+$", "") == ""
    error_message = "The region value must be an AWS region name such as eu-west-1."
  }
}

variable "source_ami" {
  type        = string
  description = "Amazon Linux 2023 minimal AMI id, read from /aws/service/ami-amazon-linux-latest/al2023-ami-minimal-kernel-default-<arch>."

  validation {
    condition     = var.source_ami != "" && regex_replace(var.source_ami, "^ami-([0-9a-f]{8}|[0-9a-f]{17})$", "") == ""
    error_message = "The source_ami value must be an AMI id (ami- followed by 8 or 17 hex digits)."
  }
}

variable "hanat_version" {
  type        = string
  default     = "0.0.0-dev"
  description = "hanat version baked into the image; part of its name and tags."

  validation {
    condition     = var.hanat_version != "" && regex_replace(var.hanat_version, "^[0-9A-Za-z.+-]+$", "") == ""
    error_message = "The hanat_version value may contain only letters, digits, dots, plus and minus signs."
  }
}

variable "agent_bundle" {
  type        = string
  default     = ""
  description = "Path of the agent bundle; empty means packages/agent/dist/hanat-agent.cjs in this checkout."
}

variable "subnet_id" {
  type        = string
  default     = ""
  description = "Subnet for the temporary build instance; empty means the region's default VPC. It must give the instance a route to the internet (dnf)."
}

variable "ssh_source_cidr" {
  type        = string
  default     = "0.0.0.0/0"
  description = "Who may reach the temporary build instance over SSH (temporary security group). Narrow it to your own address."
}

variable "ssh_keypair_name" {
  type        = string
  default     = ""
  description = "EC2 key pair to log in to the build instance with (build-ami imports a fresh ed25519 key); empty lets Packer make a temporary RSA one, which AL2023 refuses with Packer before 1.7."
}

variable "ssh_private_key_file" {
  type        = string
  default     = ""
  description = "Private key of ssh_keypair_name."
}

variable "kms_key_id" {
  type        = string
  default     = ""
  description = "KMS key for the encrypted root snapshot; empty means the account's default EBS key (aws/ebs)."
}

locals {
  repo_root = "${path.root}/../.."
  bundle    = var.agent_bundle != "" ? var.agent_bundle : "${local.repo_root}/packages/agent/dist/hanat-agent.cjs"
  # A small burstable type of the right architecture: dnf needs more memory than a nano has.
  build_instance_type = var.arch == "arm64" ? "t4g.small" : "t3.small"
  timestamp           = formatdate("YYYYMMDD-hhmmss", timestamp())
  tags = {
    "Name"              = "hanat-nat-${var.hanat_version}-${var.arch}"
    "hanat:image"       = "nat"
    "hanat:version"     = var.hanat_version
    "hanat:arch"        = var.arch
    "hanat:source-ami"  = var.source_ami
    "hanat:source-name" = "al2023-ami-minimal-kernel-default-${var.arch}"
  }
}

source "amazon-ebs" "nat" {
  region        = var.region
  source_ami    = var.source_ami
  instance_type = local.build_instance_type
  subnet_id     = var.subnet_id

  associate_public_ip_address           = true
  temporary_security_group_source_cidrs = [var.ssh_source_cidr]
  ssh_username                          = "ec2-user"
  ssh_timeout                           = "10m"
  # AL2023 accepts RSA keys only with rsa-sha2-256/512 signatures; Packer before
  # 1.7 signs its temporary RSA key with ssh-rsa and never gets in. An ed25519
  # key works with every Packer version (build-ami brings one).
  ssh_keypair_name     = var.ssh_keypair_name
  ssh_private_key_file = var.ssh_private_key_file

  ami_name        = "hanat-nat-${var.hanat_version}-${var.arch}-${local.timestamp}"
  ami_description = "hanat NAT instance image ${var.hanat_version} (${var.arch}), Amazon Linux 2023 minimal"
  # Encrypted root snapshot: the AMI is copied with encryption after the build.
  encrypt_boot = true
  kms_key_id   = var.kms_key_id
  ena_support  = true

  launch_block_device_mappings {
    device_name           = "/dev/xvda"
    volume_type           = "gp3"
    iops                  = 3000
    throughput            = 125
    encrypted             = true
    kms_key_id            = var.kms_key_id
    delete_on_termination = true
  }

  tags            = local.tags
  run_tags        = local.tags
  run_volume_tags = local.tags
  snapshot_tags   = local.tags
}

build {
  sources = ["source.amazon-ebs.nat"]

  provisioner "shell" {
    inline = ["rm -rf /tmp/hanat-image", "mkdir -p /tmp/hanat-image"]
  }

  provisioner "file" {
    source      = local.bundle
    destination = "/tmp/hanat-image/hanat-agent.cjs"
  }

  provisioner "file" {
    source      = "${local.repo_root}/scripts/provision-nat.sh"
    destination = "/tmp/hanat-image/provision-nat.sh"
  }

  # No trailing slash: uploads the directory itself, as /tmp/hanat-image/systemd.
  provisioner "file" {
    source      = "${local.repo_root}/scripts/systemd"
    destination = "/tmp/hanat-image"
  }

  provisioner "shell" {
    execute_command = "chmod +x {{ .Path }}; sudo -n {{ .Vars }} bash {{ .Path }}"
    inline = [
      "set -euo pipefail",
      "bash /tmp/hanat-image/provision-nat.sh --bundle /tmp/hanat-image/hanat-agent.cjs --assets /tmp/hanat-image/systemd",
      # Image hygiene: no build leftovers, no package cache, no SSH key of the build.
      "rm -rf /tmp/hanat-image",
      "dnf clean all",
      "rm -f /home/ec2-user/.ssh/authorized_keys /root/.ssh/authorized_keys",
    ]
  }
}
