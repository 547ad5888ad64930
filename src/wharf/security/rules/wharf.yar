/*
   Wharf's own malware heuristics, scanned over every member of a package file.

   Written for Wharf after studying GuardDog's source-code rules (Apache-2.0, Datadog): threat-setup-network-in-install,
   threat-process-download-exec, threat-runtime-obfuscation-base64exec, threat-network-exfiltration and
   threat-npm-preinstall-script. The conventions are theirs: `severity` (low | medium | high | critical) and
   `path_include` (comma-separated fnmatch patterns the member path must match) in `meta`. Strings named `$ctx_*`
   are context: a finding's line is that of the first other string that matched.
   When the optional `guarddog` package is installed, its threat rules are loaded too (namespace "guarddog").
*/

rule wharf_install_time_network
{
    meta:
        description = "setup.py reaches the network while the package is being installed"
        severity = "high"
        path_include = "setup.py,*/setup.py"
    strings:
        $ctx_setup1 = /\bsetup\s*\(/
        $ctx_setup2 = /from\s+(setuptools|distutils)/
        $net1 = /urllib\d?(\.request)?\.(urlopen|urlretrieve|Request)\s*\(/
        $net2 = /\brequests\.(get|post|put|request)\s*\(/
        $net3 = /http\.client\.HTTPS?Connection/
        $net4 = /socket\.(socket|create_connection)\s*\(/
        $net5 = /\b(curl|wget)\s+(-[a-zA-Z]+\s+)*['"]?https?:\/\//
        $net6 = /\bhttpx\.(get|post|Client)\s*\(/
    condition:
        any of ($ctx_setup*) and any of ($net*)
}

rule wharf_npm_install_script_fetch
{
    meta:
        description = "an npm install-time script (preinstall/install/postinstall) downloads or runs inline code"
        severity = "high"
        path_include = "package.json,*/package.json"
    strings:
        $hook = /"(pre|post)?install"\s*:\s*"[^"]*(curl |wget |https?:\/\/|node -e|\beval\b|powershell|\| *(ba)?sh)[^"]*"/
    condition:
        $hook
}

rule wharf_download_and_execute
{
    meta:
        description = "downloads something and executes it (pipe to a shell, exec of a fetched body, run a fetched file)"
        severity = "high"
    strings:
        $pipe = /\b(curl|wget)\s[^\n|;]{0,300}\|\s*(sudo\s+)?(ba|z|da)?sh\b/
        $py_exec_fetch = /\b(exec|eval)\s*\(\s*(urllib\d?(\.request)?\.urlopen|requests\.get|urlopen|httpx\.get)\s*\(/
        $py_retrieve = /urlretrieve\s*\([^\n]{0,300}\)[\s\S]{0,400}(os\.system|subprocess\.\w+|os\.startfile|os\.exec\w*)\s*\(/
        $js_fetch_exec = /(https?\.get|fetch)\s*\([\s\S]{0,600}(child_process|execSync|spawnSync|\beval\s*\(|new\s+Function\s*\()/
        $chmod_run = /(curl|wget)\s[^\n]{0,300}(-o|-O|>)\s*\S+[\s\S]{0,200}chmod\s+\+x/
        $ps = /(Invoke-WebRequest|iwr|DownloadString|DownloadFile)[\s\S]{0,300}(Invoke-Expression|\biex\b|Start-Process)/ nocase
    condition:
        any of them
}

rule wharf_obfuscated_exec
{
    meta:
        description = "executes code hidden by base64/zlib/marshal/hex decoding (exec/eval of a decoded payload)"
        severity = "high"
    strings:
        $py1 = /\b(exec|eval)\s*\(\s*(__import__\s*\(\s*['"](base64|zlib|marshal|codecs|binascii)['"]\s*\)|base64|zlib|marshal|codecs|binascii)\s*\.\s*\w*(decode|decompress|loads|unhexlify)\w*\s*\(/
        $py2 = /\b(exec|eval)\s*\(\s*compile\s*\(\s*(base64|zlib|marshal)\s*\.\s*\w+\s*\(/
        $py3 = /\bexec\s*\(\s*(zlib\.decompress|marshal\.loads)\s*\(\s*(base64\.\w+\s*\()?/
        $py4 = /\bexec\s*\(\s*bytes\.fromhex\s*\(/
        $js1 = /\beval\s*\(\s*(atob|Buffer\.from)\s*\(/
        $js2 = /new\s+Function\s*\(\s*(atob|Buffer\.from)\s*\(/
    condition:
        any of them
}

rule wharf_credential_exfiltration
{
    meta:
        description = "reads credentials (cloud, registry, SSH keys, token variables) and sends data over the network"
        severity = "critical"
    strings:
        $cred1 = /\.aws[\/\\]+credentials/
        $cred2 = /['"\/\\~]\.npmrc\b/
        $cred3 = /['"\/\\~]\.pypirc\b/
        $cred4 = /\.ssh[\/\\]+id_(rsa|ed25519|ecdsa|dsa)/
        $cred5 = /\.docker[\/\\]+config\.json/
        $cred6 = /\.git-credentials/
        $cred7 = /\.kube[\/\\]+config/
        $env1 = /(os\.environ|os\.getenv|process\.env)[^\n]{0,80}(AWS_SECRET_ACCESS_KEY|AWS_ACCESS_KEY_ID|NPM_TOKEN|GITHUB_TOKEN|GH_TOKEN|PYPI_TOKEN|TWINE_PASSWORD|CI_JOB_TOKEN|SLACK_TOKEN)/
        $env2 = /(JSON\.stringify\s*\(\s*process\.env\s*\)|dict\s*\(\s*os\.environ\s*\))/
        $send1 = /\brequests\.(post|put)\s*\(/
        $send2 = /urllib\d?(\.request)?\.(urlopen|Request)\s*\(/
        $send3 = /https?\.request\s*\(/
        $send4 = /\bfetch\s*\(\s*['"`]https?:/
        $send5 = /axios\.(post|put)\s*\(/
        $send6 = /\.(sendall|send)\s*\(/
        $send7 = /\bcurl\s[^\n]{0,200}(-d|--data|-F|-T)\s/
        $send8 = /dns\.resolve|nslookup\s/
    condition:
        (any of ($cred*) or any of ($env*)) and any of ($send*)
}
