{
  description = "gantry: a declarative build and release orchestrator (hermetic, cached, attested)";

  # Pinned by flake.lock to one nixos-25.05 revision.
  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-25.05";

  outputs = { self, nixpkgs }:
    let
      systems = [ "x86_64-linux" "aarch64-linux" ];
      forEachSystem = f: nixpkgs.lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});
      manifest = (builtins.fromTOML (builtins.readFile ./Cargo.toml)).package;
    in
    {
      packages = forEachSystem (pkgs: {
        default = pkgs.rustPlatform.buildRustPackage {
          pname = manifest.name;
          inherit (manifest) version;
          src = pkgs.lib.cleanSourceWith {
            src = ./.;
            filter = path: type:
              !(builtins.elem (baseNameOf path) [ "target" ".gantry" "attestations" ]);
          };
          cargoLock.lockFile = ./Cargo.lock;
          # The test suite needs user namespaces, nix and openssl at run time, which a Nix
          # build sandbox does not give; `bash scripts/test.sh` runs it.
          doCheck = false;
          meta = {
            description = manifest.description;
            license = pkgs.lib.licenses.asl20;
            mainProgram = "gantry";
            platforms = pkgs.lib.platforms.linux;
          };
        };
      });

      apps = forEachSystem (pkgs: {
        default = {
          type = "app";
          program = "${self.packages.${pkgs.stdenv.hostPlatform.system}.default}/bin/gantry";
        };
      });

      devShells = forEachSystem (pkgs: {
        default = pkgs.mkShell {
          packages = with pkgs; [ cargo rustc clippy rustfmt openssl git nix ninja hyperfine diffoscope ];
        };
      });
    };
}
