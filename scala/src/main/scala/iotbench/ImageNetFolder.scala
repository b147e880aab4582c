/*
 * ImageNet validation images from a folder, prepared as the standard evaluation transform does: shorter side
 * resized to 256 (bilinear), centre crop 224.  Kept as HWC RGB bytes (150 KB an image); normalising to floats
 * happens per batch inside the timed loop, as the original's transform chain did.
 *
 * Layouts: DIR/<wnid>/<file>.JPEG or DIR/val/<wnid>/<file>.JPEG.  Labels are ImageNet-1k indices (0-based): from
 * synsets.txt ("<index> <wnid> <name>") when DIR or its parent has one, else the folder's rank among the
 * sorted folders (right only when all 1,000 are present).
 */
package iotbench

import java.awt.RenderingHints
import java.awt.image.BufferedImage
import java.nio.file.{Files, Path, Paths}
import javax.imageio.ImageIO

import scala.collection.JavaConverters._

final case class LabeledJpeg(label: Int, name: String, hwc: Array[Byte])

object ImageNetFolder {
  val Resize = 256
  val Crop = 224
  val Mean: Array[Float] = Array(0.485f, 0.456f, 0.406f)
  val Std: Array[Float] = Array(0.229f, 0.224f, 0.225f)

  def root(folder: String): Path = {
    val p = Paths.get(folder)
    if (!Files.isDirectory(p)) throw new java.io.FileNotFoundException(s"image folder not found: $folder")
    val v = p.resolve("val")
    if (Files.isDirectory(v)) v else p
  }

  private def list(dir: Path): Seq[Path] = {
    val s = Files.newDirectoryStream(dir)
    try s.asScala.toSeq.sortBy(_.getFileName.toString) finally s.close()
  }

  def synsets(root: Path): Option[Map[String, Int]] =
    Seq(root.resolve("synsets.txt"), root.getParent.resolve("synsets.txt")).find(Files.isRegularFile(_)).map { f =>
      Files.readAllLines(f).asScala.map(_.trim.split("\\s+")).filter(_.length >= 2).map(a => a(1) -> a(0).toInt).toMap
    }

  /** (label, path) of every image under `root`, in sorted folder and file order. */
  def paths(root: Path): Seq[(Int, Path)] = {
    val dirs = list(root).filter(Files.isDirectory(_))
    val index = synsets(root).getOrElse(dirs.map(_.getFileName.toString).zipWithIndex.toMap)
    dirs.flatMap { d =>
      val wnid = d.getFileName.toString
      val label = index.getOrElse(wnid, -1)
      list(d).filter(f => Files.isRegularFile(f) && f.getFileName.toString.toLowerCase.matches(".*\\.(jpe?g|png)")).map(label -> _)
    }
  }

  /** Decode, resize the shorter side to 256 and centre-crop 224: HWC RGB bytes. */
  def prepare(path: Path): Array[Byte] = {
    val src = ImageIO.read(path.toFile)
    if (src == null) throw new IllegalArgumentException(s"cannot decode image $path")
    val scale = Resize.toDouble / math.min(src.getWidth, src.getHeight)
    val (w, h) = (math.max(Crop, math.round(src.getWidth * scale).toInt), math.max(Crop, math.round(src.getHeight * scale).toInt))
    val resized = new BufferedImage(w, h, BufferedImage.TYPE_INT_RGB)
    val g = resized.createGraphics()
    g.setRenderingHint(RenderingHints.KEY_INTERPOLATION, RenderingHints.VALUE_INTERPOLATION_BILINEAR)
    g.drawImage(src, 0, 0, w, h, null)
    g.dispose()
    val (x0, y0) = ((w - Crop) / 2, (h - Crop) / 2)
    val out = new Array[Byte](Crop * Crop * 3)
    var y = 0
    while (y < Crop) {
      var x = 0
      while (x < Crop) {
        val rgb = resized.getRGB(x0 + x, y0 + y)
        val o = (y * Crop + x) * 3
        out(o) = ((rgb >> 16) & 0xff).toByte
        out(o + 1) = ((rgb >> 8) & 0xff).toByte
        out(o + 2) = (rgb & 0xff).toByte
        x += 1
      }
      y += 1
    }
    out
  }

  /** Normalise one image into `buf` at `offset` as CHW floats ((x/255 - mean) / std). */
  def normalizeInto(hwc: Array[Byte], buf: Array[Float], offset: Int): Unit = {
    val plane = Crop * Crop
    var p = 0
    while (p < plane) {
      var c = 0
      while (c < 3) {
        buf(offset + c * plane + p) = ((hwc(p * 3 + c) & 0xff) / 255f - Mean(c)) / Std(c)
        c += 1
      }
      p += 1
    }
  }
}
