/*
 * A Spark Streaming receiver for the text stream: what `socketTextStream` does, plus two marker lines that
 * travel with the data so the driver can account without guessing:
 *   "@first <epoch us>"         stored just before the first line: when the first image arrived (throughput clock)
 *   "@eof <epoch us> <lines>"   stored when the sender closed the connection, with the number of lines read
 * Markers start with '@', which no image line does. Unlike socketTextStream it retries the connection while the
 * sender starts, and does not reconnect after the end of the stream.
 */
package iotbench

import java.io.{BufferedReader, InputStreamReader}
import java.net.{InetSocketAddress, Socket}
import java.nio.charset.StandardCharsets

import org.apache.spark.storage.StorageLevel
import org.apache.spark.streaming.receiver.Receiver

class LineReceiver(host: String, port: Int, connectTimeoutS: Int)
  extends Receiver[String](StorageLevel.MEMORY_AND_DISK_SER) {

  @volatile private var socket: Socket = _

  def onStart(): Unit = {
    val t = new Thread("iotbench-line-receiver") { override def run(): Unit = receive() }
    t.setDaemon(true)
    t.start()
  }

  def onStop(): Unit = {
    val s = socket
    if (s != null) try s.close() catch { case _: java.io.IOException => }
  }

  private def connect(): Socket = {
    val deadline = System.nanoTime + connectTimeoutS * 1000000000L
    while (!isStopped) {
      val s = new Socket()
      try {
        s.connect(new InetSocketAddress(host, port), 5000)
        return s
      } catch {
        case e: java.io.IOException =>
          s.close()
          if (connectTimeoutS > 0 && System.nanoTime > deadline) {
            reportError(s"cannot connect to $host:$port: ${e.getMessage}", e)
            store(s"@error cannot connect to $host:$port: ${e.getMessage}")
            return null
          }
          Thread.sleep(100)
      }
    }
    null
  }

  private def receive(): Unit = {
    socket = connect()
    if (socket == null) return
    var lines = 0L
    try {
      val reader = new BufferedReader(new InputStreamReader(socket.getInputStream, StandardCharsets.US_ASCII), 1 << 16)
      var line = reader.readLine()
      if (line != null) store(s"@first ${Report.epochMicros}")
      while (!isStopped && line != null) {
        store(line)
        lines += 1
        line = reader.readLine()
      }
      if (!isStopped) store(s"@eof ${Report.epochMicros} $lines")
    } catch {
      case e: java.io.IOException => if (!isStopped) store(s"@eof ${Report.epochMicros} $lines")
    } finally {
      try socket.close() catch { case _: java.io.IOException => }
    }
  }
}
