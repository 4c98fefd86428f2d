# The physical limit: every check of the benchmark's no-change run, hand-written as one shell script
# sent over one plain `ssh` call. Arguments: the sha256 of /srv/bench/app.conf and of the nginx site
# as they should be. Exit 0 when the host is converged; otherwise prints what is not.
bad=0
no() { echo "not converged: $*"; bad=1; }

for p in cron tree less nginx; do
  case "$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null)" in
    ii*) ;;
    *) no "package $p" ;;
  esac
done
[ "$(getent passwd benchuser | cut -d: -f6,7)" = /home/benchuser:/bin/bash ] || no 'user benchuser'
[ "$(stat -c '%F %U %G %a' /srv/bench 2>/dev/null)" = 'directory benchuser benchuser 755' ] || no /srv/bench

file_is() { # path, "owner group mode", sha256
  [ "$(stat -c '%U %G %a' "$1" 2>/dev/null)" = "$2" ] &&
    [ "$(sha256sum < "$1" | cut -d' ' -f1)" = "$3" ] || no "$1"
}
file_is /srv/bench/app.conf 'benchuser benchuser 640' "$1"
file_is /etc/nginx/conf.d/bench.conf 'root root 644' "$2"
[ "$(readlink /srv/bench/current.conf)" = /srv/bench/app.conf ] || no /srv/bench/current.conf

[ "$(systemctl is-active cron ssh nginx | tr '\n' ' ')" = 'active active active ' ] || no 'services running'
[ "$(systemctl is-enabled cron ssh nginx | tr '\n' ' ')" = 'enabled enabled enabled ' ] || no 'services enabled'
exit $bad
