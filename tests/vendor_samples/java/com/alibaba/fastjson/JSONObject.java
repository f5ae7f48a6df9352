package com.alibaba.fastjson;

import com.fasterxml.jackson.databind.ObjectMapper;
import java.util.HashMap;
import java.util.Map;

/**
 * The one fastjson call the vendor's sample makes (fastjson is not packaged by Debian),
 * backed by Jackson: parse a JSON object into a map, so that get("returnStatus") behaves
 * as it does with fastjson.
 */
public class JSONObject extends HashMap<String, Object> {
    public static JSONObject parseObject(String text) {
        try {
            JSONObject result = new JSONObject();
            @SuppressWarnings("unchecked")
            Map<String, Object> parsed = new ObjectMapper().readValue(text, Map.class);
            result.putAll(parsed);
            return result;
        } catch (Exception e) {
            throw new RuntimeException("not a JSON object: " + text, e);
        }
    }
}
