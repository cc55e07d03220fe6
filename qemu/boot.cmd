# boot.scr: RAUC's U-Boot A/B scheme (RAUC docs, "U-Boot"), with the env kept raw on the virtio disk
# at byte 0x100000 (block 0x800), 0x4000 bytes (0x20 blocks), `env export -c` format: the same bytes
# that fw_printenv/fw_setenv (and so RAUC's uboot backend) read and write in Linux (qemu-hil.md §5.4).
setenv envaddr 0x4f000000
setenv BOOT_ORDER
setenv BOOT_A_LEFT
setenv BOOT_B_LEFT
if virtio read ${envaddr} 0x800 0x20 && env import -c ${envaddr} 0x4000 BOOT_ORDER BOOT_A_LEFT BOOT_B_LEFT; then
  echo "RAUC: env loaded: BOOT_ORDER=${BOOT_ORDER} BOOT_A_LEFT=${BOOT_A_LEFT} BOOT_B_LEFT=${BOOT_B_LEFT}"
else
  echo "RAUC: env invalid, using defaults"
fi
test -n "${BOOT_ORDER}" || setenv BOOT_ORDER "A B"
test -n "${BOOT_A_LEFT}" || setenv BOOT_A_LEFT 3
test -n "${BOOT_B_LEFT}" || setenv BOOT_B_LEFT 3
setenv rootpart
setenv bootargs
for BOOT_SLOT in "${BOOT_ORDER}"; do
  if test -n "${rootpart}"; then
    echo "RAUC: slot ${BOOT_SLOT} not needed"
  elif test "x${BOOT_SLOT}" = "xA"; then
    if test ${BOOT_A_LEFT} -gt 0; then
      setexpr BOOT_A_LEFT ${BOOT_A_LEFT} - 1
      echo "RAUC: found valid slot A, ${BOOT_A_LEFT} attempts remaining"
      setenv rootpart 2
      setenv bootargs "console=ttyAMA0 quiet panic=1 root=/dev/vda2 rauc.slot=A"
    fi
  elif test "x${BOOT_SLOT}" = "xB"; then
    if test ${BOOT_B_LEFT} -gt 0; then
      setexpr BOOT_B_LEFT ${BOOT_B_LEFT} - 1
      echo "RAUC: found valid slot B, ${BOOT_B_LEFT} attempts remaining"
      setenv rootpart 3
      setenv bootargs "console=ttyAMA0 quiet panic=1 root=/dev/vda3 rauc.slot=B"
    fi
  fi
done
if test -n "${rootpart}"; then
  # the decremented counter is saved before the kernel is loaded: a crash or power cut from here on
  # still counts as a used attempt
  env export -c -s 0x4000 ${envaddr} BOOT_ORDER BOOT_A_LEFT BOOT_B_LEFT
  virtio write ${envaddr} 0x800 0x20
  echo "RAUC: saved BOOT_ORDER=${BOOT_ORDER} BOOT_A_LEFT=${BOOT_A_LEFT} BOOT_B_LEFT=${BOOT_B_LEFT}"
else
  echo "RAUC: no valid slot found, resetting tries to 3"
  setenv BOOT_A_LEFT 3
  setenv BOOT_B_LEFT 3
  env export -c -s 0x4000 ${envaddr} BOOT_ORDER BOOT_A_LEFT BOOT_B_LEFT
  virtio write ${envaddr} 0x800 0x20
  reset
fi
load virtio 0:${rootpart} ${kernel_addr_r} /boot/Image
load virtio 0:${rootpart} ${ramdisk_addr_r} /boot/initrd.gz
booti ${kernel_addr_r} ${ramdisk_addr_r}:${filesize} ${fdtcontroladdr}
echo "HIL-FAIL: booti returned"
