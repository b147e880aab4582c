/*
 * CIFAR-10 in its binary distribution (cifar-10-batches-bin/test_batch.bin): records of one label byte and
 * 3,072 pixel bytes as three 32x32 planes (R, G, B). `iotbench scala send` exports this file from the Python
 * pickles when only those are on disk, so both senders send the same images in the same order.
 */
package iotbench

import java.nio.file.{Files, Path, Paths}

/** One image: label 0-9 and its pixels as HWC RGB bytes (the order the text formats write). */
final case class LabeledImage(label: Int, hwc: Array[Byte])

object Cifar10Bin {
  val RecordSize: Int = 1 + Wire.Pixels

  /** The test batch inside `folder` (or `folder` itself when it is the file). */
  def testFile(folder: String): Path = {
    val p = Paths.get(folder)
    if (Files.isRegularFile(p)) p else p.resolve("test_batch.bin")
  }

  def load(file: Path): Array[LabeledImage] = {
    if (!Files.isRegularFile(file)) throw new java.io.FileNotFoundException(s"CIFAR-10 binary batch not found: $file")
    val bytes = Files.readAllBytes(file)
    if (bytes.length % RecordSize != 0)
      throw new IllegalArgumentException(s"$file: ${bytes.length} bytes is not a whole number of $RecordSize-byte records")
    Array.tabulate(bytes.length / RecordSize) { i =>
      val base = i * RecordSize
      val hwc = new Array[Byte](Wire.Pixels)
      var p = 0
      while (p < Wire.Plane) {
        hwc(p * 3) = bytes(base + 1 + p)
        hwc(p * 3 + 1) = bytes(base + 1 + Wire.Plane + p)
        hwc(p * 3 + 2) = bytes(base + 1 + 2 * Wire.Plane + p)
        p += 1
      }
      LabeledImage(bytes(base).toInt, hwc)
    }
  }
}
