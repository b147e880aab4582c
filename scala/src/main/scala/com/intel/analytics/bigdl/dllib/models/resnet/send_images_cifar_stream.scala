/*
 * send_images_cifar_stream: stream CIFAR-10 test images as text lines, the JVM counterpart of `iotbench send`.
 *
 *   java -cp <iotbench-scala jar>:<scala-library jar>:<bigdl jar> \
 *     com.intel.analytics.bigdl.dllib.models.resnet.send_images_cifar_stream [-f DIR] [-i N] [-t N] | nc -lk PORT
 *   ... --listen PORT        serve the stream itself to the first client (what `nc -lk PORT` did)
 *
 * Flags of the original: -f/--folder (cifar-10-batches-bin), -i/--imagesPerSec, -t/--totalImages.
 * Ours: --format comma|v1|v2|bigdl08 (see iotbench/Wire.scala; default comma), --arrival, --listen, --pause, --seed.
 *
 * Rate control differs from the original on purpose: the original busy-waited a lognormal gap after every
 * image, so encoding and blocked writes added to every gap; here each image has a due time drawn up front and
 * the loop writes whatever is due, then sleeps, so the achieved rate is the requested one.
 */
package com.intel.analytics.bigdl.dllib.models.resnet

import java.io.{BufferedOutputStream, FileDescriptor, FileOutputStream, OutputStream}
import java.net.{InetAddress, InetSocketAddress, ServerSocket}

import iotbench.{Cifar10Bin, Report, Wire}
import scopt.OptionParser

object send_images_cifar_stream {

  case class Params(
    folder: String = "cifar-10-batches-bin",
    imagesPerSec: Double = 10,
    totalImages: Int = 100,
    format: String = "comma",
    arrival: String = "lognormal",
    listen: Int = -1,
    pause: Double = -1,
    seed: Long = 0
  )

  val Arrivals = Seq("lognormal", "constant", "poisson", "max")

  val parser: OptionParser[Params] = new OptionParser[Params]("send_images_cifar_stream") {
    head("send_images_cifar_stream", "- stream CIFAR-10 test images as text lines")
    opt[String]('f', "folder").text("the location of the CIFAR-10 binary data set (default: cifar-10-batches-bin)")
      .action((x, c) => c.copy(folder = x))
    opt[Double]('i', "imagesPerSec").text("images per second (default: 10; 0 = as fast as possible)")
      .action((x, c) => c.copy(imagesPerSec = x))
    opt[Int]('t', "totalImages").text("total images (default: 100; the test set is cycled)")
      .action((x, c) => c.copy(totalImages = x))
    opt[String]("format").text(s"line format: ${Wire.Formats.mkString("|")} (default: comma)")
      .validate(x => if (Wire.Formats.contains(x)) success else failure(s"unknown format $x"))
      .action((x, c) => c.copy(format = x))
    opt[String]("arrival").text(s"inter-arrival process: ${Arrivals.mkString("|")} (default: lognormal, as the original)")
      .validate(x => if (Arrivals.contains(x)) success else failure(s"unknown arrival process $x"))
      .action((x, c) => c.copy(arrival = x))
    opt[Int]("listen").text("serve the stream to the first client connecting to this port (0: any free port)")
      .action((x, c) => c.copy(listen = x))
    opt[Double]("pause").text("seconds to wait before sending (default: 15 to stdout, as the original; 0 with --listen)")
      .action((x, c) => c.copy(pause = x))
    opt[Long]("seed").text("seed of the inter-arrival schedule").action((x, c) => c.copy(seed = x))
    help("help").text("print this usage text")
  }

  /** Send times (seconds from the start) of `n` images; mean gap 1/rate, lognormal with std = mean/2. */
  def schedule(n: Int, rate: Double, arrival: String, seed: Long): Array[Double] = {
    val rnd = new java.util.Random(seed)
    val mean = if (rate > 0) 1.0 / rate else 0.0
    val sigma2 = math.log(1.25)
    val due = new Array[Double](n)
    var t = 0.0
    var i = 1
    while (i < n) {
      val gap = if (mean == 0 || arrival == "max") 0.0 else arrival match {
        case "constant" => mean
        case "poisson" => -mean * math.log(1 - rnd.nextDouble())
        case _ => math.exp(math.log(mean) - sigma2 / 2 + math.sqrt(sigma2) * rnd.nextGaussian())
      }
      t += gap
      due(i) = t
      i += 1
    }
    due
  }

  def main(args: Array[String]): Unit = parser.parse(args, Params()) match {
    case Some(p) => sys.exit(run(p))
    case None => sys.exit(2)
  }

  def log(msg: String): Unit = System.err.println(s"${Report.now}: $msg")

  def run(p: Params): Int = {
    val images = try Cifar10Bin.load(Cifar10Bin.testFile(p.folder)) catch {
      case e: java.io.FileNotFoundException => System.err.println(s"error: ${e.getMessage}"); return 2
      case e: IllegalArgumentException => System.err.println(s"error: ${e.getMessage}"); return 2
    }
    val max = p.imagesPerSec <= 0 || p.arrival == "max"
    val rateText = if (max) "as fast as possible" else f"${p.imagesPerSec}%.0f images per second"
    System.err.println(s"Will send $rateText for a total of ${p.totalImages} images [${p.format}]")
    // Encode every distinct image once, before the clock starts (as the original did).
    val lines = Array.tabulate(math.min(p.totalImages, images.length))(i => Wire.encode(images(i).label, images(i).hwc, p.format))
    val pause = if (p.pause >= 0) p.pause else if (p.listen >= 0) 0.0 else 15.0
    if (p.listen >= 0) {
      val server = new ServerSocket()
      server.bind(new InetSocketAddress(InetAddress.getLoopbackAddress, p.listen))
      log(s"Listening on 127.0.0.1:${server.getLocalPort}")
      val sock = server.accept()
      log(s"Client ${sock.getRemoteSocketAddress} connected")
      val sent = try send(p, lines, pause, sock.getOutputStream) finally {
        try { // half-close, then wait for the client to finish reading so no byte is discarded
          sock.shutdownOutput()
          sock.setSoTimeout(30000)
          val in = sock.getInputStream
          val buf = new Array[Byte](65536)
          while (in.read(buf) >= 0) {}
        } catch { case _: java.io.IOException => }
        sock.close()
        server.close()
      }
      if (sent < p.totalImages) 1 else 0
    } else if (send(p, lines, pause, new FileOutputStream(FileDescriptor.out)) < p.totalImages) 1 else 0 // PrintStream would hide a broken pipe
  }

  /** Write `p.totalImages` lines on schedule; returns how many were written before any broken pipe. */
  def send(p: Params, lines: Array[Array[Byte]], pause: Double, raw: OutputStream): Int = {
    val out = new BufferedOutputStream(raw, 1 << 16)
    if (pause > 0) {
      System.err.println(f"Pausing $pause%.0f seconds - start infer_cifar_stream")
      Thread.sleep((pause * 1000).toLong)
    }
    val max = p.imagesPerSec <= 0 || p.arrival == "max"
    val due = schedule(p.totalImages, p.imagesPerSec, if (max) "max" else p.arrival, p.seed)
    val every = if (max) 10000 else math.max(p.imagesPerSec.round.toInt, 1)
    val v2 = p.format == "v2"
    log("Sending images")
    val t0 = System.nanoTime
    var sent = 0
    try {
      while (sent < p.totalImages) {
        val wait = due(sent) - (System.nanoTime - t0) / 1e9
        if (wait > 0) {
          out.flush()
          if (wait > 0.0005) Thread.sleep((wait * 1000).toLong, ((wait * 1e6) % 1000).toInt * 1000)
        }
        if (v2) out.write(Wire.v2Header(sent, Report.epochMicros * 1000L))
        out.write(lines(sent % lines.length))
        out.write('\n')
        sent += 1
        if (sent % every == 0) log(s"$sent images sent")
      }
      if (v2) out.write(Wire.v2Trailer(sent))
      if (p.format != "bigdl08") out.write('\n') // an empty line ends the stream (the original sent none)
      out.flush()
    } catch {
      case _: java.io.IOException =>
        val secs = (System.nanoTime - t0) / 1e9
        log(f"Image stream interrupted: sent $sent images in $secs%.1f seconds")
        return sent
    }
    val secs = (System.nanoTime - t0) / 1e9
    log(f"Sent $sent images in $secs%.1f seconds or ${sent / math.max(secs, 1e-9)}%.1f images/second")
    sent
  }
}
