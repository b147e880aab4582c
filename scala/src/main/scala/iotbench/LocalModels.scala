/*
 * One local copy of a broadcast BigDL model per concurrent task, reused across tasks and streaming intervals.
 *
 * BigDL 2.4's ModelBroadcast.value() clones the model and also keeps every clone in its CachedModels registry
 * under the broadcast's id; calling it once per partition, as BigDL's own predict does, therefore keeps one clone
 * (with its forward buffers, ~0.3 GB for ResNet20 at 32 images) per partition ever processed - a streaming job ran
 * a 3 GB driver out of memory after two intervals.  Borrowing from a pool bounds the clones to the tasks that run
 * at the same time.  A JVM classifies with one model at a time here, so the first use of a new broadcast drops the
 * clones of every other one (ours and BigDL's registry): the Python BigDL stream broadcasts its model once per
 * engine, and a test session that makes one engine after another would otherwise keep them all.
 */
package iotbench

import java.util.concurrent.{ConcurrentHashMap, ConcurrentLinkedQueue}

import com.intel.analytics.bigdl.dllib.models.utils.{CachedModels, ModelBroadcast}
import com.intel.analytics.bigdl.dllib.tensor.TensorNumericMath.TensorNumeric.NumericFloat

object LocalModels {
  private val pools = new ConcurrentHashMap[String, ConcurrentLinkedQueue[Classify.Model]]()

  def withModel[A](broadcast: ModelBroadcast[Float])(f: Classify.Model => A): A = {
    val uuid = broadcast.uuid()
    val pool = Option(pools.get(uuid)).getOrElse(synchronized {
      Option(pools.get(uuid)).getOrElse {
        pools.keySet().removeIf(_ != uuid)
        CachedModels.deleteAll[Float](uuid)
        val fresh = new ConcurrentLinkedQueue[Classify.Model]()
        pools.put(uuid, fresh)
        fresh
      }
    })
    val model = Option(pool.poll()).getOrElse {
      val m = broadcast.value()
      m.evaluate()
      m
    }
    try f(model) finally pool.offer(model)
  }
}
