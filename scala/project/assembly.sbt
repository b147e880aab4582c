addSbtPlugin("com.eed3si9n" % "sbt-assembly" % "2.1.5")
