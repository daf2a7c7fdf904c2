;; PruMerge's merge step in 128-bit WebAssembly SIMD (mergeKernels.ts drives it). Compiled by
;; scripts/build-wasm.mjs into mergeKernels.generated.ts.
;;
;; Every matrix is f32, row-major, rows zero-padded to `stride` bytes (a multiple of 16), and is
;; addressed by byte offsets into the one memory.
(module
  (memory (export "memory") 1)

  ;; rows[r] /= max(||rows[r]||, 1e-12) in place, as torch.nn.functional.normalize does
  (func (export "normalizeRows") (param $p i32) (param $rows i32) (param $stride i32)
    (local $end i32) (local $c i32) (local $acc v128) (local $scale v128)
    (local.set $end (i32.add (local.get $p) (i32.mul (local.get $rows) (local.get $stride))))
    (block $done
      (loop $row
        (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
        (local.set $acc (v128.const i32x4 0 0 0 0))
        (local.set $c (i32.const 0))
        (loop $sum
          (local.set $scale (v128.load (i32.add (local.get $p) (local.get $c))))
          (local.set $acc (f32x4.add (local.get $acc) (f32x4.mul (local.get $scale) (local.get $scale))))
          (local.set $c (i32.add (local.get $c) (i32.const 16)))
          (br_if $sum (i32.lt_u (local.get $c) (local.get $stride))))
        (local.set $scale
          (f32x4.splat (f32.div (f32.const 1) (f32.max (f32.sqrt (call $hsum (local.get $acc))) (f32.const 1e-12)))))
        (local.set $c (i32.const 0))
        (loop $scale_row
          (v128.store (i32.add (local.get $p) (local.get $c))
            (f32x4.mul (v128.load (i32.add (local.get $p) (local.get $c))) (local.get $scale)))
          (local.set $c (i32.add (local.get $c) (i32.const 16)))
          (br_if $scale_row (i32.lt_u (local.get $c) (local.get $stride))))
        (local.set $p (i32.add (local.get $p) (local.get $stride)))
        (br $row))))

  ;; dst += sum over t < count of w[t] * src[idx[t]]: one merged token from its cluster
  ;; (idx i32, w f32: `count` entries each)
  (func (export "gatherAxpy")
    (param $dst i32) (param $src i32) (param $stride i32) (param $idx i32) (param $w i32) (param $count i32)
    (local $t i32) (local $row i32) (local $c i32) (local $a v128)
    (local.set $t (i32.const 0))
    (block $done
      (loop $term
        (br_if $done (i32.ge_u (local.get $t) (local.get $count)))
        (local.set $row
          (i32.add (local.get $src)
            (i32.mul (i32.load (i32.add (local.get $idx) (i32.shl (local.get $t) (i32.const 2)))) (local.get $stride))))
        (local.set $a (f32x4.splat (f32.load (i32.add (local.get $w) (i32.shl (local.get $t) (i32.const 2))))))
        (local.set $c (i32.const 0))
        (loop $lanes
          (v128.store (i32.add (local.get $dst) (local.get $c))
            (f32x4.add
              (v128.load (i32.add (local.get $dst) (local.get $c)))
              (f32x4.mul (local.get $a) (v128.load (i32.add (local.get $row) (local.get $c))))))
          (local.set $c (i32.add (local.get $c) (i32.const 16)))
          (br_if $lanes (i32.lt_u (local.get $c) (local.get $stride))))
        (local.set $t (i32.add (local.get $t) (i32.const 1)))
        (br $term))))

  (func $hsum (param $v v128) (result f32)
    (f32.add
      (f32.add (f32x4.extract_lane 0 (local.get $v)) (f32x4.extract_lane 1 (local.get $v)))
      (f32.add (f32x4.extract_lane 2 (local.get $v)) (f32x4.extract_lane 3 (local.get $v)))))

;; out (rows): out[j] = keys[a] . keys[j] for one row at byte offset a (a greedy selection's
  ;; next row: cosineBlock would compute it four times)
  (func (export "cosineRow") (param $keys i32) (param $rows i32) (param $stride i32) (param $a i32) (param $out i32)
    (local $j i32) (local $p i32) (local $c i32) (local $s0 v128) (local $s1 v128)
    (local.set $j (i32.const 0))
    (local.set $p (local.get $keys))
    (block $done
      (loop $row
        (br_if $done (i32.ge_u (local.get $j) (local.get $rows)))
        (local.set $s0 (v128.const i32x4 0 0 0 0))
        (local.set $s1 (v128.const i32x4 0 0 0 0))
        (local.set $c (i32.const 0))
        ;; two running sums, so that consecutive products do not wait on each other
        (block $tail
          (loop $pairs
            (br_if $tail (i32.gt_u (i32.add (local.get $c) (i32.const 32)) (local.get $stride)))
            (local.set $s0 (f32x4.add (local.get $s0)
              (f32x4.mul (v128.load (i32.add (local.get $a) (local.get $c))) (v128.load (i32.add (local.get $p) (local.get $c))))))
            (local.set $s1 (f32x4.add (local.get $s1)
              (f32x4.mul (v128.load offset=16 (i32.add (local.get $a) (local.get $c))) (v128.load offset=16 (i32.add (local.get $p) (local.get $c))))))
            (local.set $c (i32.add (local.get $c) (i32.const 32)))
            (br $pairs)))
        (if (i32.lt_u (local.get $c) (local.get $stride))
          (then
            (local.set $s0 (f32x4.add (local.get $s0)
              (f32x4.mul (v128.load (i32.add (local.get $a) (local.get $c))) (v128.load (i32.add (local.get $p) (local.get $c))))))))
        (f32.store (i32.add (local.get $out) (i32.shl (local.get $j) (i32.const 2)))
          (call $hsum (f32x4.add (local.get $s0) (local.get $s1))))
        (local.set $p (i32.add (local.get $p) (local.get $stride)))
        (local.set $j (i32.add (local.get $j) (i32.const 1)))
        (br $row))))

  ;; the float64 dot product of two f32 rows at byte offsets a and b: each product of two f32 is
  ;; exact in f64, so this is the float64 answer up to the sum's rounding (VisPruner's exact check)
  (func (export "dotF64") (param $a i32) (param $b i32) (param $stride i32) (result f64)
    (local $c i32) (local $s0 v128) (local $s1 v128)
    (local.set $s0 (v128.const i32x4 0 0 0 0))
    (local.set $s1 (v128.const i32x4 0 0 0 0))
    (local.set $c (i32.const 0))
    (loop $lanes
      (local.set $s0
        (f64x2.add (local.get $s0)
          (f64x2.mul
            (f64x2.promote_low_f32x4 (v128.load64_zero (i32.add (local.get $a) (local.get $c))))
            (f64x2.promote_low_f32x4 (v128.load64_zero (i32.add (local.get $b) (local.get $c)))))))
      (local.set $s1
        (f64x2.add (local.get $s1)
          (f64x2.mul
            (f64x2.promote_low_f32x4 (v128.load64_zero (i32.add (i32.add (local.get $a) (local.get $c)) (i32.const 8))))
            (f64x2.promote_low_f32x4 (v128.load64_zero (i32.add (i32.add (local.get $b) (local.get $c)) (i32.const 8)))))))
      (local.set $c (i32.add (local.get $c) (i32.const 16)))
      (br_if $lanes (i32.lt_u (local.get $c) (local.get $stride))))
    (local.set $s0 (f64x2.add (local.get $s0) (local.get $s1)))
    (f64.add (f64x2.extract_lane 0 (local.get $s0)) (f64x2.extract_lane 1 (local.get $s0))))

;; out (4, rows): out[r * rows + j] = keys[a_r] . keys[j] for the 4 kept rows at byte offsets
  ;; a0..a3. Two key rows per pass, so that each load of a kept row serves two products.
  (func (export "cosineBlock")
    (param $keys i32) (param $rows i32) (param $stride i32)
    (param $a0 i32) (param $a1 i32) (param $a2 i32) (param $a3 i32) (param $out i32)
    (local $j i32) (local $p i32) (local $q i32) (local $c i32) (local $o i32)
    (local $u v128) (local $v v128) (local $w v128)
    (local $s00 v128) (local $s10 v128) (local $s20 v128) (local $s30 v128)
    (local $s01 v128) (local $s11 v128) (local $s21 v128) (local $s31 v128)
    (local.set $j (i32.const 0))
    (block $done
      (loop $rowpair
        (br_if $done (i32.ge_u (local.get $j) (local.get $rows)))
        ;; p, q: byte offsets of key rows j and j+1 (j+1 repeats j on an odd last row)
        (local.set $p (i32.add (local.get $keys) (i32.mul (local.get $j) (local.get $stride))))
        (local.set $q
          (select
            (i32.add (local.get $p) (local.get $stride))
            (local.get $p)
            (i32.lt_u (i32.add (local.get $j) (i32.const 1)) (local.get $rows))))
        (local.set $s00 (v128.const i32x4 0 0 0 0)) (local.set $s01 (v128.const i32x4 0 0 0 0))
        (local.set $s10 (v128.const i32x4 0 0 0 0)) (local.set $s11 (v128.const i32x4 0 0 0 0))
        (local.set $s20 (v128.const i32x4 0 0 0 0)) (local.set $s21 (v128.const i32x4 0 0 0 0))
        (local.set $s30 (v128.const i32x4 0 0 0 0)) (local.set $s31 (v128.const i32x4 0 0 0 0))
        (local.set $c (i32.const 0))
        (loop $lanes
          (local.set $v (v128.load (i32.add (local.get $p) (local.get $c))))
          (local.set $w (v128.load (i32.add (local.get $q) (local.get $c))))
          (local.set $u (v128.load (i32.add (local.get $a0) (local.get $c))))
          (local.set $s00 (f32x4.add (local.get $s00) (f32x4.mul (local.get $u) (local.get $v))))
          (local.set $s01 (f32x4.add (local.get $s01) (f32x4.mul (local.get $u) (local.get $w))))
          (local.set $u (v128.load (i32.add (local.get $a1) (local.get $c))))
          (local.set $s10 (f32x4.add (local.get $s10) (f32x4.mul (local.get $u) (local.get $v))))
          (local.set $s11 (f32x4.add (local.get $s11) (f32x4.mul (local.get $u) (local.get $w))))
          (local.set $u (v128.load (i32.add (local.get $a2) (local.get $c))))
          (local.set $s20 (f32x4.add (local.get $s20) (f32x4.mul (local.get $u) (local.get $v))))
          (local.set $s21 (f32x4.add (local.get $s21) (f32x4.mul (local.get $u) (local.get $w))))
          (local.set $u (v128.load (i32.add (local.get $a3) (local.get $c))))
          (local.set $s30 (f32x4.add (local.get $s30) (f32x4.mul (local.get $u) (local.get $v))))
          (local.set $s31 (f32x4.add (local.get $s31) (f32x4.mul (local.get $u) (local.get $w))))
          (local.set $c (i32.add (local.get $c) (i32.const 16)))
          (br_if $lanes (i32.lt_u (local.get $c) (local.get $stride))))
        ;; o: byte offset of out[0 * rows + j]; row r is r * rows * 4 bytes further
        (local.set $o (i32.add (local.get $out) (i32.shl (local.get $j) (i32.const 2))))
        (local.set $c (i32.shl (local.get $rows) (i32.const 2)))
        (f32.store (local.get $o) (call $hsum (local.get $s00)))
        (f32.store (i32.add (local.get $o) (local.get $c)) (call $hsum (local.get $s10)))
        (f32.store (i32.add (local.get $o) (i32.shl (local.get $c) (i32.const 1))) (call $hsum (local.get $s20)))
        (f32.store (i32.add (local.get $o) (i32.mul (local.get $c) (i32.const 3))) (call $hsum (local.get $s30)))
        (if (i32.lt_u (i32.add (local.get $j) (i32.const 1)) (local.get $rows))
          (then
            (local.set $o (i32.add (local.get $o) (i32.const 4)))
            (f32.store (local.get $o) (call $hsum (local.get $s01)))
            (f32.store (i32.add (local.get $o) (local.get $c)) (call $hsum (local.get $s11)))
            (f32.store (i32.add (local.get $o) (i32.shl (local.get $c) (i32.const 1))) (call $hsum (local.get $s21)))
            (f32.store (i32.add (local.get $o) (i32.mul (local.get $c) (i32.const 3))) (call $hsum (local.get $s31)))))
        (local.set $j (i32.add (local.get $j) (i32.const 2)))
        (br $rowpair)))))
